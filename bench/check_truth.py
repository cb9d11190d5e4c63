#!/usr/bin/env python3
"""Compare `kaprobe analyze --json` with gen_capture's per-connection ground truth.

    target/release/examples/gen_capture --out x.pcap --packets 300000 --concurrent 300 --truth x.truth
    target/release/kaprobe analyze --json x.pcap > x.json
    python3 bench/check_truth.py x.truth x.json

Checks per connection: keepalive probes, ACKed and unanswered probes (summed over
probers), the prober's role, zero-window probes, packets, and the verdict (`dead`
for connections reset after unanswered keepalives, `no_keepalive` for those
without probes; a connection with probes that did not die must not be `dead`).
Prints the summary and, per kind of difference, how many connections differ with
up to three examples. Exits 1 if anything differs.
"""
import collections
import json
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    truth_path, json_path = sys.argv[1], sys.argv[2]

    truth = {}
    with open(truth_path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            c = line.rstrip("\n").split("\t")
            truth[(c[1], c[2])] = dict(
                prober=c[3], probes=int(c[4]), ans=int(c[5]), unans=int(c[6]),
                zw=int(c[7]), zwp=int(c[8]), retrans=int(c[9]), packets=int(c[10]), end=c[11],
            )

    seen, summary = {}, None
    with open(json_path) as f:
        for line in f:
            o = json.loads(line)
            if o["type"] == "connection":
                seen[(o["client"], o["server"])] = o
            elif o["type"] == "summary":
                summary = o

    diff = collections.Counter()
    examples = collections.defaultdict(list)

    def bad(kind, key, detail):
        diff[kind] += 1
        if len(examples[kind]) < 3:
            examples[kind].append((key, detail))

    for key, t in truth.items():
        o = seen.get(key)
        if o is None:
            bad("missing connection", key, t)
            continue
        pr = o.get("probers") or []
        probes = sum(p["probes"] for p in pr)
        acked = sum(p["acked"] for p in pr)
        unans = sum(p["unanswered"] for p in pr)
        if probes != t["probes"]:
            bad("probes (kaprobe, truth)", key, (probes, t["probes"]))
        if acked != t["ans"]:
            bad("acked (kaprobe, truth)", key, (acked, t["ans"]))
        if unans != t["unans"]:
            bad("unanswered (kaprobe, truth)", key, (unans, t["unans"], "probes", probes, "acked", acked))
        if o["zero_window_probes"] != t["zwp"]:
            bad("zero-window probes (kaprobe, truth)", key, (o["zero_window_probes"], t["zwp"]))
        if o["packets"] != t["packets"]:
            bad("packets (kaprobe, truth)", key, (o["packets"], t["packets"]))
        if t["probes"] and pr and pr[0]["role"] != t["prober"]:
            bad("prober role (kaprobe, truth)", key, (pr[0]["role"], t["prober"]))
        v = o["verdict"]
        want = "dead" if t["end"] == "keepalive-rst" else "no_keepalive" if t["probes"] == 0 else None
        if want and v != want:
            bad("verdict (kaprobe, truth)", key, (v, want, t))
        if t["probes"] and t["end"] != "keepalive-rst" and v == "dead":
            bad("false dead", key, (v, t))
    for key in seen:
        if key not in truth:
            bad("extra connection", key, seen[key]["verdict"])

    print("connections: truth", len(truth), "kaprobe", len(seen))
    if summary:
        keys = ("frames", "connections", "keepalives", "keepalive_acks", "zero_window_probes", "verdicts")
        print("kaprobe summary:", {k: summary.get(k) for k in keys})
    for kind, n in diff.most_common():
        print(f"  {kind}: {n} connections, e.g. {examples[kind]}")
    if not diff:
        print("  all per-connection figures match")
    sys.exit(1 if diff else 0)


if __name__ == "__main__":
    main()
