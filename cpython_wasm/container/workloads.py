#!/usr/bin/env python3
"""The benchmark workloads: pyperformance-style programs, timed inside the interpreter under test.

This file runs in every interpreter `invoke bench` compares (the native build
python, python.wasm under wasmtime, python.js under Node), so it uses nothing
but the standard library and runs on CPython 3.11 to 3.15. Each workload does
a fixed amount of work per loop; the same loop counts run everywhere, so the
ratio of two timings is the ratio of the interpreters' speeds. Timing starts
after the interpreter has started and the workload is set up (startup is
measured separately).

    python workloads.py --list
    python workloads.py WORKLOAD --values 3 --warmups 1     # prints one JSON line
"""

import argparse
import json
import math
import random
import re
import sys
import time

# -- nbody: floating point and attribute-free tuple/list arithmetic ------------------

SOLAR_MASS = 4 * math.pi * math.pi
DAYS_PER_YEAR = 365.24


def _bodies():
    # (position, velocity, mass) of the Sun and the four gas giants, in AU, AU/day and solar masses.
    planets = [
        ([4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01],
         [1.66007664274403694e-03, 7.69901118419740425e-03, -6.90460016972063023e-05], 9.54791938424326609e-04),
        ([8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01],
         [-2.76742510726862411e-03, 4.99852801234917238e-03, 2.30417297573763929e-05], 2.85885980666130812e-04),
        ([1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01],
         [2.96460137564761618e-03, 2.37847173959480950e-03, -2.96589568540237556e-05], 4.36624404335156298e-05),
        ([1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01],
         [2.68067772490389322e-03, 1.62824170038242295e-03, -9.51592254519715870e-05], 5.15138902046611451e-05),
    ]
    bodies = [([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], SOLAR_MASS)]
    for position, velocity, mass in planets:
        bodies.append((list(position), [v * DAYS_PER_YEAR for v in velocity], mass * SOLAR_MASS))
    # Give the Sun the momentum that makes the system's total zero.
    sun_velocity = bodies[0][1]
    for _, velocity, mass in bodies[1:]:
        for axis in range(3):
            sun_velocity[axis] -= velocity[axis] * mass / SOLAR_MASS
    return bodies


def nbody(loops):
    bodies = _bodies()
    pairs = [(bodies[i], bodies[j]) for i in range(len(bodies)) for j in range(i + 1, len(bodies))]
    dt = 0.01
    for _ in range(loops):
        for _ in range(1000):
            for ((p1, v1, m1), (p2, v2, m2)) in pairs:
                dx, dy, dz = p1[0] - p2[0], p1[1] - p2[1], p1[2] - p2[2]
                magnitude = dt * (dx * dx + dy * dy + dz * dz) ** -1.5
                b1, b2 = m1 * magnitude, m2 * magnitude
                v1[0] -= dx * b2
                v1[1] -= dy * b2
                v1[2] -= dz * b2
                v2[0] += dx * b1
                v2[1] += dy * b1
                v2[2] += dz * b1
            for position, velocity, _ in bodies:
                position[0] += dt * velocity[0]
                position[1] += dt * velocity[1]
                position[2] += dt * velocity[2]


# -- richards: an operating-system task scheduler simulation (objects, method calls) --

IDLE, WORKER, HANDLER_A, HANDLER_B, DEVICE_A, DEVICE_B = range(6)
WORK, DEVICE = "work", "device"


class Packet:
    def __init__(self, link, destination, kind):
        self.link, self.destination, self.kind = link, destination, kind
        self.datum = 0
        self.data = [0] * 4

    def append_to(self, queue):
        """This packet at the end of `queue`; the queue's head."""
        self.link = None
        if queue is None:
            return self
        tail = queue
        while tail.link is not None:
            tail = tail.link
        tail.link = self
        return queue


class Task:
    """A task of the simulated system; `step(packet)` runs it once and returns the task to run next."""

    def __init__(self, system, ident, priority, queue, pending, waiting):
        self.system, self.ident, self.priority, self.queue = system, ident, priority, queue
        self.packet_pending, self.waiting, self.holding = pending, waiting, False
        self.link, system.tasks = system.tasks, self
        system.table[ident] = self

    def blocked(self):
        return self.holding or (not self.packet_pending and self.waiting)

    def run(self):
        packet = None
        if self.packet_pending and self.waiting and not self.holding:
            packet, self.queue = self.queue, self.queue.link
            self.waiting = False
            self.packet_pending = self.queue is not None
        return self.step(packet)

    def wait(self):
        self.waiting = True
        return self

    def hold(self):
        self.system.holds += 1
        self.holding = True
        return self.link

    def release(self, ident):
        task = self.system.table[ident]
        task.holding = False
        return task if task.priority > self.priority else self

    def send(self, packet):
        task = self.system.table[packet.destination]
        self.system.sends += 1
        packet.link, packet.destination = None, self.ident
        if task.queue is None:
            task.queue, task.packet_pending = packet, True
            if task.priority > self.priority:
                return task
        else:
            task.queue = packet.append_to(task.queue)
        return self


class IdleTask(Task):
    def __init__(self, system):
        super().__init__(system, IDLE, 1, None, pending=False, waiting=False)
        self.control, self.count = 1, 10000

    def step(self, packet):
        self.count -= 1
        if self.count == 0:
            return self.hold()
        if self.control & 1 == 0:
            self.control //= 2
            return self.release(DEVICE_A)
        self.control = (self.control // 2) ^ 0xD008
        return self.release(DEVICE_B)


class WorkerTask(Task):
    def __init__(self, system, queue):
        super().__init__(system, WORKER, 1000, queue, pending=True, waiting=True)
        self.destination, self.count = HANDLER_A, 0

    def step(self, packet):
        if packet is None:
            return self.wait()
        self.destination = HANDLER_B if self.destination == HANDLER_A else HANDLER_A
        packet.destination, packet.datum = self.destination, 0
        for index in range(4):
            self.count = self.count + 1 if self.count < 26 else 1
            packet.data[index] = ord("A") + self.count - 1
        return self.send(packet)


class HandlerTask(Task):
    def __init__(self, system, ident, priority, queue):
        super().__init__(system, ident, priority, queue, pending=True, waiting=True)
        self.work, self.devices = None, None

    def step(self, packet):
        if packet is not None:
            if packet.kind == WORK:
                self.work = packet.append_to(self.work)
            else:
                self.devices = packet.append_to(self.devices)
        work = self.work
        if work is None:
            return self.wait()
        if work.datum >= 4:
            self.work = work.link
            return self.send(work)
        device = self.devices
        if device is None:
            return self.wait()
        self.devices = device.link
        device.datum = work.data[work.datum]
        work.datum += 1
        return self.send(device)


class DeviceTask(Task):
    def __init__(self, system, ident, priority):
        super().__init__(system, ident, priority, None, pending=False, waiting=True)
        self.pending = None

    def step(self, packet):
        if packet is None:
            packet, self.pending = self.pending, None
            return self.wait() if packet is None else self.send(packet)
        self.pending = packet
        return self.hold()


class System:
    def __init__(self):
        self.tasks, self.table, self.sends, self.holds = None, [None] * 6, 0, 0
        IdleTask(self)
        WorkerTask(self, Packet(Packet(None, 0, WORK), 0, WORK))
        for handler, device, priority in ((HANDLER_A, DEVICE_A, 2000), (HANDLER_B, DEVICE_B, 3000)):
            HandlerTask(self, handler, priority, Packet(Packet(Packet(None, device, DEVICE), device, DEVICE), device, DEVICE))
        DeviceTask(self, DEVICE_A, 4000)
        DeviceTask(self, DEVICE_B, 5000)

    def schedule(self):
        task = self.tasks
        while task is not None:
            task = task.link if task.blocked() else task.run()


def richards(loops):
    for _ in range(loops):
        system = System()
        system.schedule()
        if (system.sends, system.holds) != (23246, 9297):
            raise AssertionError(f"richards: wrong result {system.sends}, {system.holds}")


# -- float: many short-lived objects with float attributes -----------------------------

class Point:
    __slots__ = ("x", "y", "z")

    def __init__(self, i):
        self.x = x = math.sin(i)
        self.y = math.cos(i) * 3
        self.z = (x * x) / 2

    def normalise(self):
        norm = math.sqrt(self.x * self.x + self.y * self.y + self.z * self.z)
        self.x /= norm
        self.y /= norm
        self.z /= norm

    def maximise(self, other):
        self.x = max(self.x, other.x)
        self.y = max(self.y, other.y)
        self.z = max(self.z, other.z)
        return self


def float_points(loops):
    for _ in range(loops):
        points = [Point(i) for i in range(20000)]
        for point in points:
            point.normalise()
        best = points[0]
        for point in points[1:]:
            best = best.maximise(point)


# -- spectral_norm and fannkuch: tight loops over ints and lists -----------------------

def _a(i, j):
    return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)


def spectral_norm(loops):
    n = 100
    for _ in range(loops):
        u = [1.0] * n
        for _ in range(5):
            v = [sum(_a(i, j) * u[j] for j in range(n)) for i in range(n)]
            u = [sum(_a(j, i) * v[j] for j in range(n)) for i in range(n)]


def _fannkuch(n):
    """The most prefix reversals any permutation of range(n) needs to bring 0 to the front, and a checksum."""
    permutation, count, best, checksum, index, r = list(range(n)), [0] * n, 0, 0, 0, n
    while True:
        while r != 1:
            count[r - 1] = r
            r -= 1
        p, flips = permutation[:], 0
        while (k := p[0]):
            p[:k + 1] = p[k::-1]
            flips += 1
        best = max(best, flips)
        checksum += -flips if index % 2 else flips
        while True:  # the next permutation in count-array order
            if r == n:
                return best, checksum
            first = permutation[0]
            permutation[:r] = permutation[1:r + 1]
            permutation[r] = first
            count[r] -= 1
            if count[r] > 0:
                break
            r += 1
        index += 1


def fannkuch(loops):
    for _ in range(loops):
        if _fannkuch(8) != (22, 1616):
            raise AssertionError(f"fannkuch: wrong result {_fannkuch(8)}")


# -- json: encoding and decoding a document of dicts, lists, strings and numbers -------

def _document():
    generator = random.Random(5)
    return {f"key{i}": {"id": i, "name": f"item \u00e9{i}", "tags": [f"t{generator.randrange(100)}" for _ in range(5)],
                        "score": generator.random(), "active": i % 3 == 0, "parent": None}
            for i in range(300)}


def json_dumps(loops):
    document = _document()
    for _ in range(loops):
        for _ in range(10):
            json.dumps(document)
            json.dumps(document, indent=1, sort_keys=True)


def json_loads(loops):
    text = json.dumps(_document())
    for _ in range(loops):
        for _ in range(20):
            json.loads(text)


# -- regex: compiled patterns searched over generated text --------------------------

def regex(loops):
    generator = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "user@example.org", "2026-12-02", "192.168.0.1", "x" * 12]
    text = " ".join(generator.choice(words) + str(generator.randrange(1000)) for _ in range(4000))
    patterns = [re.compile(p) for p in (r"\b\w+@\w+\.\w+", r"\d{4}-\d\d-\d\d", r"(\d+)\.(\d+)\.(\d+)\.(\d+)",
                                         r"(?i)GAMMA\d*", r"\b(a\w+|d\w+)\b", r"x{3,}")]
    for _ in range(loops):
        for pattern in patterns:
            pattern.findall(text)
        re.sub(r"(\w+)(\d)", r"\2\1", text)


# -- dict_str: dictionaries keyed by strings, str methods, formatting ---------------------

def dict_str(loops):
    words = [f"word{i % 977}" for i in range(20000)]
    for _ in range(loops):
        counts = {}
        for word in words:
            counts[word] = counts.get(word, 0) + 1
        index = {key.upper(): value for key, value in counts.items()}
        line = ",".join(f"{key}={value}" for key, value in sorted(index.items()))
        parts = dict(item.split("=") for item in line.split(","))
        if len(parts) != 977:
            raise AssertionError("dict_str: wrong result")


# name -> (function, loops per value): about 0.1-0.2 s per value natively on this project's CI machine.
WORKLOADS = {
    "nbody": (nbody, 30),
    "richards": (richards, 6),
    "float": (float_points, 6),
    "spectral_norm": (spectral_norm, 8),
    "fannkuch": (fannkuch, 1),
    "json_dumps": (json_dumps, 8),
    "json_loads": (json_loads, 15),
    "regex": (regex, 8),
    "dict_str": (dict_str, 10),
}


def measure(name: str, values: int, warmups: int) -> dict:
    function, loops = WORKLOADS[name]
    timings = []
    for index in range(warmups + values):
        start = time.perf_counter()
        function(loops)
        elapsed = time.perf_counter() - start
        if index >= warmups:
            timings.append(elapsed)
    return {"workload": name, "loops": loops, "values": timings, "warmups": warmups,
            "python": sys.version.split()[0], "platform": sys.platform}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", nargs="?", choices=sorted(WORKLOADS))
    parser.add_argument("--values", type=int, default=3)
    parser.add_argument("--warmups", type=int, default=1)
    parser.add_argument("--list", action="store_true", help="print the workloads' names")
    options = parser.parse_args(argv)
    if options.list or options.workload is None:
        print(json.dumps(list(WORKLOADS)))
        return 0
    print(json.dumps(measure(options.workload, options.values, options.warmups)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
