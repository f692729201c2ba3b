"""Network round trips: the kernel's smoothed RTT of established TCP connections, or TCP connect probes.

The kernel's view comes from the sock_diag netlink interface (what ``ss -ti`` prints as ``rtt:``), so no
packet is sent; probes time a TCP connect to each configured ``host:port``.
"""

from __future__ import annotations

import collections
import ipaddress
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_INFO = 2
TCP_ESTABLISHED = 1
TCPI_RTT_OFFSET = 68  # struct tcp_info: 8 bytes of u8 fields, then u32 fields; tcpi_rtt is the 16th u32
_NLMSGHDR = struct.Struct("=IHHII")
_REQ_V2 = struct.Struct("=BBBxI")  # family, protocol, ext, pad, states; then the 48-byte sockid
_DIAG_MSG = struct.Struct("=BBBB")  # family, state, timer, retrans; then sockid (48), 5 x u32
_DIAG_MSG_SIZE = 4 + 48 + 20


def _align4(n: int) -> int:
    return (n + 3) & ~3


def build_dump_request(family: int, sequence: int) -> bytes:
    body = _REQ_V2.pack(family, socket.IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1), 1 << TCP_ESTABLISHED)
    body += b"\0" * 48
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP,
                            sequence, 0)
    return header + body


def is_loopback(family: int, raw_address: bytes) -> bool:
    if family == socket.AF_INET:
        return ipaddress.IPv4Address(raw_address[:4]).is_loopback
    address = ipaddress.IPv6Address(raw_address[:16])
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def parse_dump(data: bytes, include_loopback: bool = False) -> tuple[list[float], bool]:
    """RTTs in ms of the connections in one netlink reply; the flag says whether the dump is complete."""
    rtts: list[float] = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            return rtts, True
        if kind in (NLMSG_DONE, NLMSG_ERROR):
            return rtts, True
        payload = offset + _NLMSGHDR.size
        family, state, _timer, _retrans = _DIAG_MSG.unpack_from(data, payload)
        destination = data[payload + 4 + 4 + 16: payload + 4 + 4 + 32]  # sport, dport, src[16], dst[16]
        if state == TCP_ESTABLISHED and (include_loopback or not is_loopback(family, destination)):
            attribute = payload + _DIAG_MSG_SIZE
            end = offset + length
            while attribute + 4 <= end:
                attr_length, attr_type = struct.unpack_from("=HH", data, attribute)
                if attr_length < 4:
                    break
                if attr_type == INET_DIAG_INFO and attr_length >= 4 + TCPI_RTT_OFFSET + 4:
                    (rtt_us,) = struct.unpack_from("=I", data, attribute + 4 + TCPI_RTT_OFFSET)
                    if rtt_us > 0:
                        rtts.append(rtt_us / 1000.0)
                    break
                attribute += _align4(attr_length)
        offset += _align4(length)
    return rtts, False


class KernelRttReader:
    """Smoothed RTTs (ms) of established TCP connections to non-loopback peers, IPv4 and IPv6."""

    name = "tcp_srtt"

    def __init__(self, socket_factory: Callable[[], socket.socket] | None = None, include_loopback: bool = False):
        self._socket_factory = socket_factory or (
            lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG))
        self.include_loopback = include_loopback
        self._sequence = 0

    def available(self) -> bool:
        try:
            self.read()
            return True
        except OSError:
            return False

    def read(self) -> list[float]:
        rtts: list[float] = []
        with self._socket_factory() as sock:
            sock.settimeout(1.0)
            for family in (socket.AF_INET, socket.AF_INET6):
                self._sequence += 1
                sock.send(build_dump_request(family, self._sequence))
                done = False
                while not done:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    found, done = parse_dump(chunk, self.include_loopback)
                    rtts.extend(found)
        return rtts


class ConnectProbe:
    """TCP connect time (ms) to each ``host:port`` target; a failed connect gives no reading."""

    name = "tcp_connect"

    def __init__(self, targets: Iterable[str], timeout_s: float = 1.0,
                 connect: Callable[[tuple[str, int], float], socket.socket] = socket.create_connection,
                 clock: Callable[[], float] = time.perf_counter):
        self.targets = []
        for target in targets:
            host, _, port = target.rpartition(":")
            self.targets.append((host.strip("[]"), int(port)))
        self.timeout_s = timeout_s
        self._connect = connect
        self._clock = clock

    def read(self) -> list[float]:
        times = []
        for target in self.targets:
            start = self._clock()
            try:
                connection = self._connect(target, self.timeout_s)
            except OSError:
                continue
            times.append((self._clock() - start) * 1000.0)
            connection.close()
        return times


IDLE_INTERVAL_S = 16.0  # the longest wait between polls that found nothing to measure


def next_interval(current_s: float, found: bool, base_s: float, idle_s: float = IDLE_INTERVAL_S) -> float:
    """The wait before the next poll: ``base_s`` after one that found round trips, doubled (up to ``idle_s``)
    after each that found none. A kernel dump walks the whole TCP table (3 ms of system time on a machine with
    no connection at all); on a machine without outside connections it is taken every 16 s, not every 2."""
    return base_s if found else min(current_s * 2.0, max(idle_s, base_s))


class LatencyMonitor:
    """Polls a latency reader on its own thread (a probe may block) and keeps the last ``window_s`` of RTTs;
    polls that find nothing back off (``next_interval``)."""

    def __init__(self, reader, interval_s: float = 2.0, window_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self.reader = reader
        self.interval_s = interval_s
        self.wait_s = interval_s  # the wait before the next poll
        self.window_s = window_s
        self._clock = clock
        self._values: collections.deque[tuple[float, float]] = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tsstats-latency", daemon=True)
        self._fresh = float("nan")
        self.error = ""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def poll_once(self) -> None:
        try:
            values = self.reader.read()
            self.error = ""
        except OSError as error:
            values = []
            self.error = str(error)
        self.wait_s = next_interval(self.wait_s, bool(values), self.interval_s)
        now = self._clock()
        with self._lock:
            self._values.extend((now, value) for value in values)
            while self._values and self._values[0][0] < now - self.window_s:
                self._values.popleft()
            if values:
                ordered = sorted(values)
                self._fresh = ordered[len(ordered) // 2]

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.wait_s)

    def median_ms(self) -> float:
        """Median RTT over the window, NaN when there is none."""
        now = self._clock()
        with self._lock:
            values = sorted(value for t, value in self._values if t >= now - self.window_s)
        if not values:
            return float("nan")
        middle = len(values) // 2
        return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2.0

    def take_fresh(self) -> float:
        """Median of the newest poll if not taken yet, else NaN (stored once per poll)."""
        with self._lock:
            value, self._fresh = self._fresh, float("nan")
        return value
