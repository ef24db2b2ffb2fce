"""The SUMO digital twin: scenario loading, traffic-light discovery and the control loop.

Any ``.sumocfg`` whose network has traffic lights works: phases, incoming lanes (extended
upstream so a short entry lane does not blind a detector) and outgoing lanes are discovered
from the network itself. Controllers (``controllers.py``) choose the next green at each
decision step; the twin inserts the yellow transition, enforces minimum green and gives
emergency vehicles priority.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

GREEN = frozenset("Gg")
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
    for f in nets:
        if not (p.parent / f).is_file():
            raise TwinError(f"{p}: net-file {f} not found")
    begin, end = _opt(root, "begin"), _opt(root, "end")
    return ScenarioConfig(p, nets, _files(_opt(root, "route-files")),
                          _files(_opt(root, "additional-files")),
                          float(begin) if begin else 0.0, float(end) if end else None)


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
        shutil.copyfile(cfg.path, copy)
        yield copy
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class Segment:
    """Part of a lane watched by a detector: vehicles at positions >= start (0 = whole lane)."""

    lane: str
    start: float


@dataclass
class Intersection:
    """One controlled traffic light, as discovered from the network's own program."""

    id: str
    program: str
    states: list[str]  # every phase of the network's program, in order
    durations: list[float]
    greens: list[int]  # indices into states: the green phases a controller may choose
    links: list[tuple[str, str]]  # per signal index: (incoming lane, outgoing lane), "" if none
    in_lanes: list[str]
    out_lanes: list[str]
    phase_in: list[list[str]]  # per green (position in greens): incoming lanes it serves
    phase_out: list[list[str]]
    detect: dict[str, list[Segment]] = field(default_factory=dict)  # lane -> watched segments

    def green_state(self, g: int) -> str:
        return self.states[self.greens[g]]

    def yellow_between(self, a: int, b: int) -> str:
        """The network's yellow after green a, with every link that loses green turned yellow.

        The network's own yellow is kept when it already covers the change; a link that would
        go straight from green to red (possible when skipping phases) gets 'y' as well."""
        src, dst = self.green_state(a), self.green_state(b)
        i = self.greens[a]
        nxt = self.states[(i + 1) % len(self.states)]
        base = nxt if "y" in nxt else src
        out = []
        for k, (s, d) in enumerate(zip(src, dst, strict=True)):
            if s in GREEN and d not in GREEN:
                out.append("y")
            elif s in GREEN:
                out.append(base[k] if base[k] in "yGg" else s)
            else:
                out.append(base[k] if base[k] in "ry" else s)
        return "".join(out)

    def serving(self, link_index: int) -> list[int]:
        """Greens (positions) that give link_index green, protected ('G') first."""
        full = [g for g in range(len(self.greens)) if self.green_state(g)[link_index] == "G"]
        part = [g for g in range(len(self.greens)) if self.green_state(g)[link_index] == "g"]
        return full + part


def is_green_phase(state: str) -> bool:
    return any(c in GREEN for c in state) and "y" not in state.lower()


def extend_upstream(lane: str, net: Any, length: float, tls_nodes: set[str]) -> list[Segment]:
    """Segments covering `length` metres upstream of the stop line of `lane`.

    Walks through predecessor lanes (sumolib) when the lane is shorter than `length`; stops at
    junctions controlled by a traffic light, whose queues belong to that light."""
    first = net.getLane(lane)
    if first.getLength() >= length:
        return [Segment(lane, 0.0)]
    out = [Segment(lane, 0.0)]
    frontier = [(first, length - first.getLength())]
    seen = {lane}
    while frontier:
        cur, rest = frontier.pop()
        node = cur.getEdge().getFromNode()
        if node.getID() in tls_nodes:
            continue
        for pred in cur.getIncoming():
            pid = pred.getID()
            if pid in seen or pid.startswith(":"):
                continue
            seen.add(pid)
            plen = pred.getLength()
            if plen >= rest:
                out.append(Segment(pid, plen - rest))
            else:
                out.append(Segment(pid, 0.0))
                frontier.append((pred, rest - plen))
    return out


def discover(conn: Any, net: Any, detect_length: float) -> list[Intersection]:
    """Every traffic light that has at least two distinct green phases in its active program."""
    tls_nodes = {n.getID() for n in net.getNodes() if n.getType() == "traffic_light"}
    result = []
    for tid in conn.trafficlight.getIDList():
        prog = conn.trafficlight.getProgram(tid)
        logics = conn.trafficlight.getAllProgramLogics(tid)
        logic = next((lg for lg in logics if lg.programID == prog), logics[0] if logics else None)
        if logic is None:
            continue
        states = [p.state for p in logic.phases]
        durations = [float(p.duration) for p in logic.phases]
        greens, seen_states = [], set()
        for i, s in enumerate(states):
            if is_green_phase(s) and s not in seen_states:
                greens.append(i)
                seen_states.add(s)
        if len(greens) < 2:
            continue
        links = []
        for group in conn.trafficlight.getControlledLinks(tid):
            links.append((group[0][0], group[0][1]) if group else ("", ""))
        in_lanes = sorted({a for a, _ in links if a})
        out_lanes = sorted({b for _, b in links if b})
        phase_in, phase_out = [], []
        for g in greens:
            served = [k for k, c in enumerate(states[g]) if c in GREEN and k < len(links)]
            phase_in.append(sorted({links[k][0] for k in served if links[k][0]}))
            phase_out.append(sorted({links[k][1] for k in served if links[k][1]}))
        inter = Intersection(tid, prog, states, durations, greens, links, in_lanes, out_lanes,
                             phase_in, phase_out)
        for lane in in_lanes:
            inter.detect[lane] = extend_upstream(lane, net, detect_length, tls_nodes)
        result.append(inter)
    return result


# ---------------------------------------------------------------------------- observation


@dataclass
class LaneState:
    queue: float = 0.0  # halting vehicles (speed < 0.1 m/s)
    count: float = 0.0  # all vehicles
    wait: float = 0.0  # summed waiting time (s)


@dataclass
class Observation:
    """What a controller sees of one intersection at a decision step."""

    time: float
    current: int  # position in Intersection.greens
    green_time: float  # seconds the current green has been shown
    lanes: dict[str, LaneState]


def observe_lanes(conn: Any, inter: Intersection) -> dict[str, LaneState]:
    """Incoming lanes with their upstream extension, and outgoing lanes."""
    lanes: dict[str, LaneState] = {}
    L = conn.lane
    for lane, segs in inter.detect.items():
        st = LaneState()
        for seg in segs:
            if seg.start <= 0.0:
                st.queue += L.getLastStepHaltingNumber(seg.lane)
                st.count += L.getLastStepVehicleNumber(seg.lane)
                st.wait += L.getWaitingTime(seg.lane)
            else:
                for v in L.getLastStepVehicleIDs(seg.lane):
                    if conn.vehicle.getLanePosition(v) >= seg.start:
                        st.count += 1
                        if conn.vehicle.getSpeed(v) < 0.1:
                            st.queue += 1
                        st.wait += conn.vehicle.getWaitingTime(v)
        lanes[lane] = st
    for lane in inter.out_lanes:
        if lane not in lanes:
            lanes[lane] = LaneState(L.getLastStepHaltingNumber(lane),
                                    L.getLastStepVehicleNumber(lane), 0.0)
    return lanes


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


@dataclass
class RunResult:
    tripinfo: Path
    end: float
    decisions: int = 0
    decide_seconds: float = 0.0  # time spent inside controllers' choose()
    changes: int = 0
    log: list[tuple[float, str, str, str]] = field(default_factory=list)  # (t, tls, state, kind)


def open_sumo(args: list[str], backend: str = "auto") -> Any:
    """Start SUMO in-process with libsumo (fast) or, failing that, through TraCI."""
    _sumo_env()
    if backend in ("auto", "libsumo"):
        try:
            import libsumo

            libsumo.start([sumo_binary(), *args])
            return libsumo
        except ImportError:
            if backend == "libsumo":
                raise
    import traci

    traci.start([sumo_binary(), *args])
    return traci
