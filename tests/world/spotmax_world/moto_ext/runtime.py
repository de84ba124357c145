"""Process-wide state of the extensions: one lock, the virtual clock, the faults.

moto keeps its backends in module globals, so there is one AWS per process; the HTTP
middleware and the background ticker both mutate it under :data:`RUNTIME.lock`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from .clock import VirtualClock
from .faults import Faults

if TYPE_CHECKING:
    from .eks import EksApi


@dataclass
class PendingInterruption:
    account_id: str
    region: str
    instance_id: str
    due: datetime


@dataclass
class Runtime:
    lock: threading.RLock = field(default_factory=threading.RLock)
    clock: VirtualClock = field(default_factory=VirtualClock)
    faults: Faults = field(default_factory=Faults)
    interruptions: list[PendingInterruption] = field(default_factory=list)
    # moto builds ~2600 default AMIs per EC2 backend (about 0.5 s on every reset).
    default_amis: bool = True
    # Wiring, not test state (a reset keeps it): the Kubernetes API EKS clusters report, and the
    # clusters the world keeps (re-created after a reset).
    eks_api: EksApi | None = None
    eks_clusters: list[str] = field(default_factory=list)

    def reset(self) -> None:
        with self.lock:
            self.clock.reset()
            self.faults.reset()
            self.interruptions.clear()


RUNTIME = Runtime()
