{{/* Names and labels of one release: a service in one lane. */}}

{{- define "depthflow-service.name" -}}
{{- required "service.name is required (collector, aggregator, peaks, ai-fusion or risk)" .Values.service.name -}}
{{- end -}}

{{/* The release name is the full name (releases are named "<service>" and "<service>-canary"). */}}
{{- define "depthflow-service.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "depthflow-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "depthflow-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "depthflow-service.labels" -}}
{{ include "depthflow-service.selectorLabels" . }}
app.kubernetes.io/component: {{ include "depthflow-service.name" . }}
{{ include "depthflow-service.commonLabels" . }}
{{- end -}}

{{/* Labels of everything the release makes, the bootstrap Job included. */}}
{{- define "depthflow-service.commonLabels" -}}
app.kubernetes.io/part-of: depthflow
app.kubernetes.io/version: {{ include "depthflow-service.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
depthflow.io/lane: {{ .Values.service.lane }}
{{- end -}}

{{- define "depthflow-service.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}

{{- define "depthflow-service.image" -}}
{{- $repo := .Values.image.repository | default (printf "depthflow/%s" (include "depthflow-service.name" .)) -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (include "depthflow-service.tag" .) -}}
{{- end -}}
{{- end -}}

{{- define "depthflow-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "depthflow-service.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The system's config file, as the ConfigMap holds it. */}}
{{- define "depthflow-service.configYaml" -}}
{{- if .Values.config -}}
{{ toYaml .Values.config }}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{- define "depthflow-service.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "depthflow-service.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .Values.readOnlyRootFilesystem }}
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Environment shared by the service and its bootstrap Job: lane, server URLs (from the
     Secret), the shared runtime settings of config.runtime as DEPTHFLOW_<FIELD> (so the Job,
     which runs before the ConfigMap exists, sees the same prefix, venue and symbols). */}}
{{- define "depthflow-service.serverEnv" -}}
- name: DEPTHFLOW_LANE
  value: {{ .Values.service.lane | quote }}
{{- range $kind := list "nats" "postgres" "redis" }}
{{- $key := index $.Values.servers $kind }}
{{- if $key }}
- name: {{ printf "DEPTHFLOW_%s_URL" (upper $kind) }}
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.servers.secretName | quote }}
      key: {{ $key | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "depthflow-service.runtimeEnv" -}}
{{- $runtime := (.Values.config).runtime | default dict }}
{{- range $field, $value := $runtime }}
- name: {{ printf "DEPTHFLOW_%s" (upper $field) }}
  value: {{ ternary (toJson $value) (toString $value) (kindIs "slice" $value) | quote }}
{{- end }}
{{- end -}}
