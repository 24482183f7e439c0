"""Experiments made of many runs: ResNet-18 and MF-JLE over seeds (`reproduce`, Tables 1-2), and a real-dataset study
(`study`)."""

from __future__ import annotations

from . import study
from .reproduce import reproduce

__all__ = ["reproduce", "study"]
