#!/usr/bin/env python3
"""Writes the small seed corpora of fuzz/seeds/ from tests/data and /work/shared/data-like inputs.

Run from the repository root: python3 fuzz/make-seeds.py [SHARED_DATA_DIR]
"""
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"
OUT = os.path.join(ROOT, "fuzz", "seeds")
LINKS = [1, 101, 113, 276, 0]


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def pcap_frames(path, limit):
    """(linktype, [(ts_us, frame)]) of a classic pcap, or None."""
    b = open(path, "rb").read()
    if len(b) < 24:
        return None
    magic = b[:4]
    order = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
             b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}.get(magic)
    if order is None:
        return None
    link = struct.unpack(order + "I", b[20:24])[0]
    out, at = [], 24
    while at + 16 <= len(b) and len(out) < limit:
        sec, usec, incl, _ = struct.unpack(order + "IIII", b[at:at + 16])
        out.append((sec * 1_000_000 + usec, b[at + 16:at + 16 + incl]))
        at += 16 + incl
    return link, out, b[:at]


def replay_seed(link, frames, mode):
    out = bytearray([LINKS.index(link), mode])
    last = frames[0][0]
    for ts, f in frames:
        gap = min(255, max(0, (ts - last) // 1000))
        last = ts
        f = f[:1500]
        out += struct.pack(">HB", len(f), gap) + f
    return bytes(out)


pcaps = [os.path.join(ROOT, "tests", "data", n) for n in sorted(os.listdir(os.path.join(ROOT, "tests", "data"))) if n.endswith(".pcap")]
pcaps += [os.path.join(SHARED, "pcap", n) for n in sorted(os.listdir(os.path.join(SHARED, "pcap"))) if n.endswith(".pcap")]
for i, p in enumerate(pcaps):
    got = pcap_frames(p, 24)
    if not got or not got[1]:
        continue
    link, frames, head = got
    name = os.path.basename(p).rsplit(".", 1)[0]
    write("pcap_reader", name + ".pcap", head[:16384])
    if link in LINKS:
        write("wire_replay", name, replay_seed(link, frames, i * 37 % 256))

requests = [
    '{"v":1,"op":"add","engid":"ids-1","sniff_if":"eth1","reset_if":"eth0","host":"10.0.0.1","port":"443","seconds":"60"}',
    '{"v":1,"op":"add","engid":"e","sniff_if":"eth1","reset_if":"eth0","host":"fd77::1","seconds":"10"}',
    '{"v":1,"op":"cancel","engid":"e","host":"10.0.0.1","port":"1"}',
    '{"v":1,"op":"show","engid":"e","host":"10.0.0.1"}',
    '{"v":1,"op":"list"}', '{"v":1,"op":"flush"}', '{"v":1,"op":"stats"}', '{"v":-1}',
]
for i, r in enumerate(requests):
    write("control_request", f"req{i}", r)

write("config_state", "tcpresetd.toml", open(os.path.join(ROOT, "config", "tcpresetd.toml")).read())
write("config_state", "saved.json",
      '{"version":1,"rules":[{"engid":"e","host":"10.0.0.1","port":443,"sniff_if":"eth1",'
      '"reset_if":"eth0","created":0,"expires":1800000000000000}]}')

paths = ["id.orig_h,id.resp_p,ts,proto", "src_ip,dest_port,alert.severity,event_type", "a,b.c,x"]
logs = [os.path.join(SHARED, "suricata", "fh_honeypot-2018_alerts.eve.ndjson"),
        os.path.join(SHARED, "zeek", "rita_json-with-all-fields_open_conn.json.log"),
        os.path.join(ROOT, "tests", "data", "hunt", "logins.ndjson")]
for i, p in enumerate(logs):
    if not os.path.exists(p):
        continue
    lines = [l for l in open(p, "rb").read().split(b"\n") if l.startswith(b"{")][:4]
    for j, l in enumerate(lines):
        write("ndjson_extract", f"{os.path.basename(p)}-{j}", paths[i % 3].encode() + b"\n" + l[:4096])
write("ndjson_extract", "escapes", 'a,b\n{"a":"\\u00e9\\n","b":[1,2e3,-0.5],"a":null}')

templates = [
    'tcpreset {{engid}} -i eth1 -o eth0 -h {{host}} -p {{port}} -d 60',
    '{{#hits}}tcpreset e -i eth1 -o eth0 -h {{src_ip}} -d {{secs}}\n{{/hits}}{{^hits}}none{{/hits}}',
    "{{=<% %>=}}tcpreset list <%&raw%> {{{x}}}",
]
data = '{"engid":"ids-1","host":"10.0.0.1","port":443,"hits":[{"src_ip":"10.1.1.1","secs":5}],"raw":"a b\'c"}'
for i, t in enumerate(templates):
    write("template_command", f"t{i}", data + "\n" + t)

for n in sorted(os.listdir(os.path.join(ROOT, "playbooks"))):
    if n.endswith(".yaml"):
        write("playbook_yaml", n, open(os.path.join(ROOT, "playbooks", n)).read())
