"""depthflow peaks: wave peaks, walls, zones and levels of bucketed books and trade profiles.

The public entry point is :func:`find_wave_peaks` (``from depthflow.peaks import find_wave_peaks``).
"""

from depthflow.peaks.detectors import Features, Peak, WavePeaks, find_wave_peaks
from depthflow.peaks.params import DEFAULT, PeakParams

__all__ = ["DEFAULT", "Features", "Peak", "PeakParams", "WavePeaks", "find_wave_peaks"]
