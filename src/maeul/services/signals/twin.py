"""The SUMO digital twin: scenario loading, the controller protocol and run settings.

Any ``.sumocfg`` whose network has traffic lights works: phases, incoming lanes (extended
upstream so a short entry lane does not blind a detector) and outgoing lanes are discovered
from the network itself (``lights.py``). Controllers (``controllers.py``) choose the next
green at each decision step; the loop (``runner.py``) inserts the yellow transition, enforces
minimum green and gives emergency vehicles priority.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from .lights import (
    BOX_WAIT,
    GREEN,
    MIN_GAP,
    Intersection,
    LaneState,
    Observation,
    Segment,
    discover,
    extend_downstream,
    extend_upstream,
    inside_junction,
    is_green_phase,
    light_nodes,
    observe_exits,
    observe_lanes,
    waiting_walkers,
)

# discovery and observation live in lights.py; importing them from here keeps working
__all__ = ["GREEN", "MIN_GAP", "Intersection", "LaneState", "Observation", "Segment",
           "discover", "extend_downstream", "extend_upstream", "inside_junction",
           "is_green_phase", "light_nodes", "observe_exits", "observe_lanes",
           "waiting_walkers"]

RESCO_NAMES = ("cologne1", "cologne3", "cologne8", "ingolstadt1", "ingolstadt7",
               "ingolstadt21", "grid4x4", "arterial4x4")


class TwinError(ValueError):
    """A scenario that cannot be simulated or controlled; the message names the problem."""


def sumo_home() -> Path:
    """The eclipse-sumo package's SUMO_HOME; set in the environment for sumolib and libsumo.

    libsumo points SUMO_HOME at its data-only folder on import, so the tools' folder comes
    from the eclipse-sumo package itself rather than from the environment."""
    try:
        import sumo
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise TwinError("the SUMO twin needs the 'sim' extra: pip install 'maeul[sim]'") from exc
    home = Path(sumo.SUMO_HOME)
    os.environ.setdefault("SUMO_HOME", str(home))
    return home


def _sumo_env() -> None:
    sumo_home()


def sumo_tool(name: str) -> str:
    """Path of a SUMO executable (sumo, netconvert, netgenerate) from the installed package."""
    exe = sumo_home() / "bin" / name
    return str(exe) if exe.exists() else name


def sumo_binary() -> str:
    return sumo_tool("sumo")


def resolve_config(net: str | Path) -> Path:
    """A path to a .sumocfg, or a RESCO network name resolved inside the sumo-rl package."""
    p = Path(net)
    if p.suffix == ".sumocfg" or p.exists():
        if not p.is_file():
            raise TwinError(f"SUMO configuration not found: {p}")
        return p
    name = str(net)
    if name in RESCO_NAMES:
        # find_spec, not import: importing sumo_rl starts its gym environment machinery
        spec = importlib.util.find_spec("sumo_rl")
        if spec is None or not spec.submodule_search_locations:
            raise TwinError("RESCO networks need the 'sim' extra (package sumo-rl)")
        pkg = Path(list(spec.submodule_search_locations)[0])
        cfg = pkg / "nets" / "RESCO" / name / f"{name}.sumocfg"
        if cfg.is_file():
            return cfg
    raise TwinError(f"not a .sumocfg file nor a RESCO network name ({', '.join(RESCO_NAMES)}): "
                    f"{net}")


@dataclass(frozen=True)
class ScenarioConfig:
    """What the twin needs from a .sumocfg: its inputs and its time window."""

    path: Path
    net_files: list[str]
    route_files: list[str]
    additional_files: list[str]
    begin: float
    end: float | None

    @property
    def name(self) -> str:
        return self.path.stem


def _opt(root: ET.Element, key: str) -> str | None:
    for el in root.iter(key):
        v = el.get("value")
        if v is not None:
            return v
    return None


def _files(value: str | None) -> list[str]:
    return [f.strip() for f in (value or "").split(",") if f.strip()]


def read_config(path: str | Path) -> ScenarioConfig:
    """Parse a .sumocfg; missing or malformed files raise TwinError naming the problem."""
    p = resolve_config(path)
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as exc:
        raise TwinError(f"{p}: not a valid SUMO configuration ({exc})") from exc
    nets = _files(_opt(root, "net-file"))
    if not nets:
        raise TwinError(f"{p}: the configuration names no net-file")
    routes = _files(_opt(root, "route-files"))
    adds = _files(_opt(root, "additional-files"))
    for kind, names in (("net-file", nets), ("route file", routes), ("additional file", adds)):
        for f in names:
            if not (p.parent / f).is_file():
                raise TwinError(f"{p}: {kind} not found: {f}")
    begin, end = _opt(root, "begin"), _opt(root, "end")
    stop = float(end) if end else demand_end([p.parent / r for r in routes])
    return ScenarioConfig(p, nets, routes, adds, float(begin) if begin else 0.0, stop)


def open_xml(path: Path) -> IO[bytes]:
    """A SUMO XML file for reading, gzipped (``.gz``) or not."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def require_lights(config: str | Path) -> ScenarioConfig:
    """``read_config``, and a TwinError when no network file defines a traffic light (checked
    before a benchmark or a tuning starts its simulations)."""
    cfg = read_config(config)
    for name in cfg.net_files:
        path = cfg.path.parent / name
        try:
            with open_xml(path) as fh:
                for _, el in ET.iterparse(fh, events=("start",)):
                    if el.tag == "tlLogic":
                        return cfg
        except (ET.ParseError, OSError, EOFError) as exc:
            raise TwinError(f"{path}: not a valid SUMO network ({exc})") from exc
    raise TwinError(f"{cfg.path}: the network has no traffic lights")


def demand_end(route_files: list[Path]) -> float | None:
    """For a configuration without an end time: the last scheduled departure (vehicles, trips,
    flow ends) rounded up to the minute, so the run covers the demand the scenario defines
    (Bologna's acosta: 3598 s -> 3600 s). None when the files schedule nothing."""
    last = None
    for path in route_files:
        if not path.is_file():
            raise TwinError(f"route file not found: {path}")
        try:
            with open_xml(path) as fh:
                for _, el in ET.iterparse(fh, events=("end",)):
                    if el.tag not in ("vehicle", "trip", "flow", "person"):
                        continue
                    try:
                        t = float(el.get("end" if el.tag == "flow" else "depart", ""))
                    except ValueError:
                        t = -1.0  # "triggered", "now" or absent: no fixed time
                    last = t if last is None or t > last else last
                    el.clear()
        except (ET.ParseError, OSError, EOFError) as exc:
            raise TwinError(f"{path}: not a valid route file ({exc})") from exc
    return None if last is None or last < 0 else math.ceil(last / 60.0) * 60.0


@contextmanager
def sandbox(cfg: ScenarioConfig) -> Iterator[Path]:
    """A temporary copy of the scenario (inputs linked) so outputs never land in its folder,
    which may be read-only or shared; yields the copied .sumocfg."""
    tmp = Path(tempfile.mkdtemp(prefix="maeul-sumo-"))
    try:
        for rel in cfg.net_files + cfg.route_files + cfg.additional_files:
            src = (cfg.path.parent / rel).resolve()
            dst = tmp / rel
            if src.is_file() and not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.symlink_to(src)
        copy = tmp / cfg.path.name
        root = ET.parse(cfg.path).getroot()
        # settings for the GUI (a file the twin does not link) mean nothing headless
        for parent in list(root.iter()):
            for child in list(parent):
                if child.tag in ("gui_only", "gui-settings-file"):
                    parent.remove(child)
        ET.ElementTree(root).write(copy, encoding="unicode")
        yield copy
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Controller(Protocol):
    """Chooses the next green (a position in ``inter.greens``) at each decision step."""

    name: str

    def reset(self, intersections: list[Intersection]) -> None: ...

    def choose(self, inter: Intersection, obs: Observation) -> int: ...


@dataclass(frozen=True)
class Proposal:
    """A plan change at one intersection, offered to the approval policy before it acts."""

    tls_id: str
    time: float
    from_phase: int
    to_phase: int
    reason: str  # "controller" or "emergency"


ApprovalPolicy = Callable[[Proposal], bool]
PlanHook = Callable[[str, int, str], None]


def automatic(_: Proposal) -> bool:
    """Approval policy for evaluation runs: every proposal is applied at once."""
    return True


@dataclass
class Timing:
    """RESCO's timing: a decision every 10 s with 3 s yellow (arterial4x4: 5 s and 2 s)."""

    decision: float = 10.0
    yellow: float = 3.0
    min_green: float | None = None  # default: decision - yellow
    detect_length: float = 75.0
    emergency_range: float = 150.0
    # the longest a link turning green waits for vehicles inside the junction that would
    # cross its path, at lights with pedestrian crossings (``lights.box_clear``); 0: never
    box_wait: float = BOX_WAIT

    @property
    def min_green_s(self) -> float:
        return self.min_green if self.min_green is not None else self.decision - self.yellow

    @staticmethod
    def for_network(name: str) -> Timing:
        return Timing(5.0, 2.0) if name == "arterial4x4" else Timing()


@dataclass
class _Signal:
    green: int
    since: float
    yellow_until: float | None = None
    target: int = 0
    last_green: list[float] = field(default_factory=list)  # per link: when it was last green
    # links of the current green held red because their exit is full, and those turning
    # yellow on the way there until clear_until; held_next: to hold in the target green
    held: frozenset[int] = frozenset()
    clearing: frozenset[int] = frozenset()
    clear_until: float | None = None
    held_next: frozenset[int] = frozenset()
    # links of the current green kept red while vehicles still inside the junction would
    # cross their path (``box_clear``), until box_until at the latest
    box_held: frozenset[int] = frozenset()
    box_until: float | None = None
    decided: frozenset[int] = frozenset()  # the holds of the last decision

    def shown(self, inter: Intersection) -> str:
        """The current green as shown, with its held links red (not during a yellow)."""
        return inter.shown(self.green, self.held | self.box_held, self.clearing)

    def red_times(self, inter: Intersection, now: float) -> list[float]:
        """Seconds each link has been without green (0 while it is green)."""
        shown = self.shown(inter) if self.yellow_until is None else ""
        return [0.0 if k < len(shown) and shown[k] in GREEN else now - t
                for k, t in enumerate(self.last_green)]


@dataclass
class RunResult:
    tripinfo: Path
    end: float
    decisions: int = 0
    decide_seconds: float = 0.0  # time spent inside controllers' choose()
    observe_seconds: float = 0.0  # time spent reading the intersections' detectors
    changes: int = 0
    log: list[tuple[float, str, str, str]] = field(default_factory=list)  # (t, tls, state, kind)


def open_sumo(args: list[str], backend: str = "auto") -> Any:
    """Start SUMO in-process with libsumo (fast) or, failing that, through TraCI."""
    _sumo_env()
    if backend in ("auto", "libsumo"):
        try:
            import libsumo

        except ImportError:
            if backend == "libsumo":
                raise
        else:
            try:
                libsumo.start([sumo_binary(), *args])
            except libsumo.TraCIException as exc:
                # SUMO refused the scenario; libsumo's exception cannot cross processes
                raise TwinError(f"SUMO could not start the scenario: {exc}") from None
            return libsumo
    import traci

    try:
        traci.start([sumo_binary(), *args])
    except (traci.TraCIException, traci.FatalTraCIError) as exc:
        raise TwinError(f"SUMO could not start the scenario: {exc}") from None
    return traci
