"""A member of a consumer group on one of the streams mcp-redis writes, with
redis-py: it creates the group, takes its own pending entries first and then
new ones (XREADGROUP), does the work of each entry once (keyed by its
event_id, or log_id on the audit stream) and acknowledges it (XACK). The
same worker as examples/go-worker, flag for flag; see examples/README.md.

    python3 examples/python-worker/worker.py --group indexers --from 0

It uses only what redis-py 4.3 (Debian 12's python3-redis) has.
"""

import argparse
import json
import re
import signal
import socket
import sys
import time

import redis

# What a worker needs to know of each of the server's streams (README,
# "Entry encoding" and "Pub/sub notices"): the field that is the entry's own
# id, the fields that hold JSON text (objects, arrays, any-JSON values and
# numbers; every other field is a string, as it is), and the fields printed
# on the entry's line.
STREAMS = {
    "audit_log_stream": {
        "id_field": "log_id",
        "json_fields": ("inputs", "outputs", "duration_ms", "input_bytes"),
        "key_fields": ("log_id", "module", "procedure", "status", "workflow_id", "session_id"),
    },
    "ccwj_update_stream": {
        "id_field": "event_id",
        "json_fields": ("value",),
        "key_fields": ("event_id", "workflow_id", "phase_id", "field", "value"),
    },
    "user_feedback": {
        "id_field": "event_id",
        "json_fields": (),
        "key_fields": ("event_id", "workflow_id", "phase_id", "session_id", "user_id", "module", "procedure"),
    },
    "workflow_events": {
        "id_field": "event_id",
        "json_fields": (),
        "key_fields": ("event_id", "workflow_id", "phase", "event_type"),
    },
}

# How long an entry's work is remembered as done: the server's default
# idempotency window, after which the same id written again is a new entry.
DONE_TTL_MS = 24 * 3600 * 1000

# One blocking read waits at most this long, so a stop is seen within it.
POLL_MS = 1000


def log(msg):
    print("python-worker: " + msg, file=sys.stderr, flush=True)


def duration_ms(s):
    """A duration as Go writes it: 500ms, 2s, 1m30s, 1h."""
    if s == "0":
        return 0
    unit = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise argparse.ArgumentTypeError("not a duration: %r (e.g. 500ms, 2s, 1m)" % s)
    return sum(float(n) * unit[u] for n, u in parts)


def at_least(lo):
    def parse(s):
        n = int(s)
        if n < lo:
            raise argparse.ArgumentTypeError("want at least %d, not %d" % (lo, n))
        return n

    return parse


def options(argv):
    p = argparse.ArgumentParser(prog="worker.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="Redis the server writes to")
    p.add_argument("--prefix", default="mcp:", help="the server's key prefix (redis.prefix)")
    p.add_argument("--stream", default="workflow_events", choices=sorted(STREAMS), help="stream, without the prefix")
    p.add_argument("--group", default="workers", help="consumer group")
    p.add_argument("--consumer", default="python-worker@" + socket.gethostname(),
                   help="this worker's name in the group; keep it across restarts to get its pending entries back")
    p.add_argument("--from", dest="start", default="$",
                   help="where a group this worker creates starts: $ (entries added from now on) or 0 (every entry)")
    p.add_argument("--count", type=at_least(1), default=10, help="entries per read")
    p.add_argument("--max", type=at_least(0), default=0, help="stop after this many entries (0: no limit)")
    p.add_argument("--idle", type=duration_ms, default=0, help="stop when no new entry came for this long (0: never)")
    p.add_argument("--json", action="store_true", help='print one JSON object per entry: {"stream","id","status","fields"}')
    return p.parse_args(argv)


def decode(values, shape):
    """Turns an entry's values into JSON values as the README's entry
    encoding says: strings as they are, JSON fields parsed. A value that is
    not valid JSON is kept as the string Redis holds."""
    out = {}
    for k, v in values.items():
        out[k] = v
        if k in shape["json_fields"]:
            try:
                out[k] = json.loads(v)
            except ValueError:
                pass
    return out


def quote(s):
    """Quotes a value holding a space or a character that is not printable,
    so no entry can reach the terminal as escape sequences."""
    if s == "" or '"' in s or any(c.isspace() or not c.isprintable() for c in s):
        return json.dumps(s, ensure_ascii=False)
    return s


class Worker:
    def __init__(self, o):
        self.o = o
        self.shape = STREAMS[o.stream]
        self.key = o.prefix + o.stream
        self.r = redis.Redis.from_url(o.redis_url, decode_responses=True)
        self.handled = 0
        self.stopping = False

    def done(self):
        return self.stopping or (self.o.max > 0 and self.handled >= self.o.max)

    def read(self, entry_id, block):
        """One XREADGROUP from entry_id; block None does not wait. A pending
        entry trimmed from the stream since comes back with no fields."""
        count = self.o.count
        if self.o.max > 0:
            count = min(count, self.o.max - self.handled)
        reply = self.r.xreadgroup(self.o.group, self.o.consumer, {self.key: entry_id}, count=count, block=block)
        if not reply:
            return []  # BLOCK ran out
        return reply[0][1]

    def report(self, entry_id, status, fields):
        """One line per entry: the entry id, what became of it and its key
        fields, or with --json one object with every field decoded."""
        if self.o.json:
            entry = {"stream": self.o.stream, "id": entry_id, "status": status, "fields": fields}
            print(json.dumps(entry, separators=(",", ":"), ensure_ascii=False), flush=True)
            return
        line = entry_id + " " + status
        for k in self.shape["key_fields"]:
            if fields is None or k not in fields:
                continue
            v = fields[k]
            if k in self.shape["json_fields"]:
                line += " %s=%s" % (k, json.dumps(v, separators=(",", ":"), ensure_ascii=False))
            else:
                line += " %s=%s" % (k, quote(v))
        print(line, flush=True)

    def handle(self, entry_id, values):
        """The work of one entry, unless done before, then its XACK.
        Delivery is at least once: a worker that stops after the work and
        before its XACK gets the entry back when it starts again (as another
        consumer of the group does once the server's claim_events reclaims
        it). The done mark, set right after the work and before the XACK,
        tells such an entry apart; work that must happen exactly once would
        keep the mark in the same transaction as its own effect."""
        self.handled += 1
        if not values:
            # Pending, but trimmed from the stream since: nothing to do.
            self.report(entry_id, "gone", None)
            self.r.xack(self.key, self.o.group, entry_id)
            return
        fields = decode(values, self.shape)
        event_id = fields.get(self.shape["id_field"])
        mark = None
        if isinstance(event_id, str) and event_id:
            mark = "%sdone:{%s}:%s:%s" % (self.o.prefix, self.key, self.o.group, event_id)
            if self.r.exists(mark):
                self.report(entry_id, "already_done", fields)
                self.r.xack(self.key, self.o.group, entry_id)
                return

        self.report(entry_id, "done", fields)  # the work: here, telling of the entry

        if mark:
            self.r.set(mark, entry_id, px=DONE_TTL_MS)
        self.r.xack(self.key, self.o.group, entry_id)

    def run(self):
        o = self.o
        try:
            self.r.xgroup_create(self.key, o.group, id=o.start, mkstream=True)
            log("created group %s on %s, starting at %s" % (o.group, self.key, o.start))
        except redis.ResponseError as e:
            # BUSYGROUP: the group exists already; join it where it is.
            if not str(e).startswith("BUSYGROUP"):
                raise

        # Entries handed to this consumer earlier and never acknowledged (it
        # stopped between reading and XACK) come first: reading from id 0
        # gives them back, oldest first, without blocking.
        last = "0"
        while not self.done():
            msgs = self.read(last, None)
            if not msgs:
                break
            for entry_id, values in msgs:
                if self.done():
                    return
                self.handle(entry_id, values)
                last = entry_id

        # Then entries nobody in the group has had yet.
        last_new = time.monotonic()
        while not self.done():
            block = POLL_MS
            if o.idle > 0:
                left = o.idle - (time.monotonic() - last_new) * 1000
                if left <= 0:
                    log("no new entry for %gms: stopping" % o.idle)
                    return
                block = min(block, max(1, int(left)))
            msgs = self.read(">", block)
            if msgs:
                last_new = time.monotonic()
            for entry_id, values in msgs:
                if self.done():
                    return
                self.handle(entry_id, values)


def main(argv):
    w = Worker(options(argv))

    def stop(signum, frame):
        w.stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        w.run()
    except redis.RedisError as e:
        log(str(e))
        return 1
    finally:
        w.r.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
