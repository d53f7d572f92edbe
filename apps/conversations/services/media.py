"""Reading videos for the model: a few key frames (for a vision profile) and the sound
track (for transcription), with ffmpeg from the system's packages (Debian's `ffmpeg`).

ffmpeg runs as a subprocess on a temporary copy of the video (MP4 files often keep
their index at the end, so it needs a seekable file, not a pipe), bounded in time and
in output. Without ffmpeg a video is answered like any file the bot cannot read.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

KEY_FRAMES = 4  # frames passed to the model, spread over the video
KEY_FRAMES_SCANNED = 120  # key frames decoded at most (a long video has many)
FRAME_MAX_SIDE = 768  # pixels: enough for a vision model, small in the prompt
FFMPEG_SECONDS = 60  # per ffmpeg run


class VideoUnreadable(Exception):
    """ffmpeg is missing, or could not read the video."""


def video_key_frames(video: bytes, *, count: int = KEY_FRAMES) -> list[bytes]:
    """Up to `count` JPEG key frames, evenly spread from the first to the last."""
    with tempfile.TemporaryDirectory(prefix="assistant-video-") as folder:
        source = _write(folder, video)
        _ffmpeg(
            "-skip_frame",
            "nokey",  # decode key frames only: cheap, and each is a whole picture
            "-i",
            str(source),
            "-an",
            "-fps_mode",
            "vfr",
            "-frames:v",
            str(KEY_FRAMES_SCANNED),
            "-vf",
            f"scale='min({FRAME_MAX_SIDE},iw)':'min({FRAME_MAX_SIDE},ih)'"
            ":force_original_aspect_ratio=decrease",
            "-q:v",
            "4",
            str(Path(folder, "frame-%04d.jpg")),
        )
        frames = sorted(Path(folder).glob("frame-*.jpg"))
        if not frames:
            raise VideoUnreadable("no frame could be decoded")
        return [frames[index].read_bytes() for index in _spread(len(frames), count)]


def video_sound(video: bytes) -> bytes | None:
    """The sound track as Ogg/Opus (mono, 16 kHz: what speech recognition needs), or None
    when the video has no sound."""
    with tempfile.TemporaryDirectory(prefix="assistant-video-") as folder:
        source = _write(folder, video)
        if not _has_audio(source):
            return None
        target = Path(folder, "sound.ogg")
        _ffmpeg(
            "-i", str(source), "-vn", "-ac", "1", "-ar", "16000", "-c:a", "libopus", str(target)
        )
        return target.read_bytes()


def _spread(total: int, count: int) -> list[int]:
    """`count` indexes spread evenly over `total` items, first and last included."""
    if total <= count:
        return list(range(total))
    if count == 1:
        return [0]
    return sorted({round(i * (total - 1) / (count - 1)) for i in range(count)})


def _write(folder: str, video: bytes) -> Path:
    source = Path(folder, "video")
    source.write_bytes(video)
    return source


def _has_audio(source: Path) -> bool:
    found = _run(
        "ffprobe",
        "-v",
        "error",
        "-select_streams",
        "a",
        "-show_entries",
        "stream=index",
        "-of",
        "csv=p=0",
        str(source),
    )
    return bool(found.strip())


def _ffmpeg(*arguments: str) -> None:
    _run("ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *arguments)


def _run(program: str, *arguments: str) -> str:
    executable = shutil.which(program)
    if executable is None:
        raise VideoUnreadable(f"{program} is not installed (apt-get install ffmpeg)")
    try:
        done = subprocess.run(  # noqa: S603 - a fixed program, our own arguments
            [executable, *arguments],
            capture_output=True,
            timeout=FFMPEG_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise VideoUnreadable(f"{program} took longer than {FFMPEG_SECONDS}s") from error
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise VideoUnreadable(f"{program} failed: {message[0][:200]}")
    return done.stdout.decode(errors="replace")
