#!/usr/bin/env python3
"""Filter churn against a broker: memory after many distinct filters come and go.

One client subscribes to FILTERS distinct filters in batches of BATCH (one
SUBSCRIBE each), another publishes MESSAGES x SIZE bytes at QoS 0 to each
filter of the batch, the subscriber reads them all, then unsubscribes the
batch. Prints what was delivered and the broker's VmRSS/VmHWM before and
after (from /proc/PID/status). Plain sockets, MQTT 3.1.1, no dependencies.

    broker-churn.py PORT PID [FILTERS=10000] [BATCH=100] [MESSAGES=20] [SIZE=1024]

Used for the churn rows of docs/benchmarks.md (issue 15), side by side with
Mosquitto.
"""
import socket
import struct
import sys


def remaining(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(kind, body):
    return bytes([kind]) + remaining(len(body)) + body


def s(text):
    data = text.encode()
    return struct.pack("!H", len(data)) + data


class Client:
    def __init__(self, port, client_id):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.sock.sendall(packet(0x10, s("MQTT") + bytes([4, 2]) + struct.pack("!H", 60) + s(client_id)))
        kind, _ = self.read()
        assert kind == 0x20, "no CONNACK"
        self.pkid = 0

    def read(self):
        while True:
            if len(self.buf) >= 2:
                mult, length, i = 1, 0, 1
                while i < len(self.buf):
                    b = self.buf[i]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        break
                else:
                    i = None
                if i is not None and len(self.buf) >= i + length:
                    kind, body = self.buf[0] & 0xF0, self.buf[i:i + length]
                    self.buf = self.buf[i + length:]
                    return kind, body
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("broker closed the connection")
            self.buf += chunk

    def next_id(self):
        self.pkid = self.pkid % 65535 + 1
        return struct.pack("!H", self.pkid)

    def subscribe(self, filters):
        self.sock.sendall(packet(0x82, self.next_id() + b"".join(s(f) + b"\x00" for f in filters)))

    def unsubscribe(self, filters):
        self.sock.sendall(packet(0xA2, self.next_id() + b"".join(s(f) for f in filters)))

    def publish(self, topic, payload):
        self.sock.sendall(packet(0x30, s(topic) + payload))


def mem(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return f"VmRSS {fields['VmRSS']:.1f} MB, VmHWM {fields['VmHWM']:.1f} MB"


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    filters, batch, messages, size = (list(map(int, sys.argv[3:7])) + [10000, 100, 20, 1024][len(sys.argv[3:7]):])
    sub, pub = Client(port, "churn-sub"), Client(port, "churn-pub")
    payload = b"x" * size
    print(f"before: {mem(pid)}")
    delivered = 0
    for start in range(0, filters, batch):
        names = [f"churn/{n}" for n in range(start, min(start + batch, filters))]
        sub.subscribe(names)
        while sub.read()[0] != 0x90:
            pass
        for name in names:
            for _ in range(messages):
                pub.publish(name, payload)
        want = len(names) * messages
        got = 0
        sub.sock.settimeout(10)
        try:
            while got < want:
                kind, _ = sub.read()
                got += kind == 0x30
        except (socket.timeout, EOFError):
            pass
        sub.sock.settimeout(None)
        delivered += got
        sub.unsubscribe(names)
        while sub.read()[0] != 0xB0:
            pass
    print(f"after {filters} filters x {messages} x {size} B: delivered {delivered:,} of {filters * messages:,}; {mem(pid)}")


if __name__ == "__main__":
    main()
