"""Where poses go: OpenPose JSON, JSON lines, annotated video, HTTP. Each behind a bounded queue."""
from __future__ import annotations

from .base import Result, Sink, SinkWorker
from .files import JsonLinesSink, OpenPoseJsonSink, VideoSink

__all__ = ["Result", "Sink", "SinkWorker", "OpenPoseJsonSink", "JsonLinesSink", "VideoSink", "HttpSink"]


def __getattr__(name: str):
    if name == "HttpSink":  # http.server is only imported when the endpoint is wanted
        from .http import HttpSink

        return HttpSink
    raise AttributeError(name)
