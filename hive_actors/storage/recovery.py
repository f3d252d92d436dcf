"""Which checkpoint a resume continues from, when the newest one may be damaged.

By default a damaged latest checkpoint refuses the resume: silently going back to an older
one would run again nodes that had completed (and repeat their side effects). The caller
chooses instead: an explicit checkpoint (``checkpoint=N``, ``--checkpoint N``) or the newest
intact one (``fallback=True``, ``--fallback``), and is told which nodes will run again.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from hive_actors.errors import CorruptFileError, SessionStateError
from hive_actors.storage.checkpoint_store import Checkpoint
from hive_actors.storage.seam import SessionReader

__all__ = ["ResumePoint", "choose_checkpoint", "damaged_checkpoints"]


@attrs.frozen
class ResumePoint:
    """The checkpoint to continue from (None: start over from the original input) and, when
    it is not the newest, ``note`` says what runs again."""

    checkpoint: Checkpoint | None
    note: str | None = None


def choose_checkpoint(reader: SessionReader, session_id: str, *,
                      checkpoint: int | None = None, fallback: bool = False) -> ResumePoint:
    """The checkpoint of ``session_id`` a resume continues from (blocking reads).

    Raises `CorruptFileError` naming the file and the choices when the newest checkpoint is
    damaged and neither ``checkpoint`` nor ``fallback`` is given; `SessionStateError` when
    checkpoint ``checkpoint`` is not there intact.
    """
    if checkpoint is not None:
        intact = reader.checkpoints(session_id, skip_damaged=True)
        for cp in intact:
            if cp.seq == checkpoint:
                return ResumePoint(cp, f"resuming session {session_id} from checkpoint "
                                       f"{cp.seq}{_after(cp)}; {_again(cp)}")
        raise SessionStateError(f"session {session_id} has no intact checkpoint {checkpoint} "
                                f"(intact: {_seqs([cp.seq for cp in intact])})")
    try:
        return ResumePoint(reader.latest_checkpoint(session_id))
    except CorruptFileError as exc:
        damage = exc
    intact = reader.checkpoints(session_id, skip_damaged=True)
    newest = intact[-1] if intact else None
    if newest is None:
        consequence = "start the session over from its original input (every node runs again)"
    else:
        consequence = f"continue from checkpoint {newest.seq}{_after(newest)}; {_again(newest)}"
    if not fallback:
        choices = (f"resume from an intact checkpoint with --checkpoint N (intact: "
                   f"{_seqs([cp.seq for cp in intact])}), or pass --fallback to {consequence}"
                   if intact else f"pass --fallback to {consequence}")
        raise CorruptFileError(str(damage.path), f"{_reason(damage)}; it is the latest checkpoint of "
                                            f"session {session_id}: {choices}")
    return ResumePoint(newest, f"{damage.path} is damaged; --fallback: {consequence}")


def damaged_checkpoints(reader: SessionReader, session_ids: Iterable[str]) -> list[str]:
    """Where the unreadable checkpoints of these sessions are (blocking reads), for recovery
    and listing to report."""
    return [where for sid in session_ids for where in reader.damaged_checkpoints(sid)]


def _after(cp: Checkpoint) -> str:
    return f" (saved after node {cp.node_id!r})" if cp.node_id else ""


def _again(cp: Checkpoint) -> str:
    nodes = ", ".join(cp.state.next_nodes) or "its next node"
    return f"nodes completed after it run again, starting with {nodes}"


def _seqs(seqs: list[int]) -> str:
    return ", ".join(map(str, seqs)) or "none"


def _reason(exc: CorruptFileError) -> str:
    prefix = f"{exc.path}: "
    text = str(exc)
    return text[len(prefix):] if text.startswith(prefix) else text
