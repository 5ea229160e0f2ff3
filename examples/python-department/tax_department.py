#!/usr/bin/env python3
"""A tax department system on the Yishi hub: the integrator's reference department.

Written from docs/integrating-a-department.md alone. It takes over from the tax simulator
(`yishi department run --agency tax`): same topics, same consumer group, same replies.

    python tax_department.py --bootstrap HOST:PORT [--prefix yishi.] [--state FILE]

Per request on <prefix>dept.tax.requests (consumer group <prefix>dept.tax, read_committed):
  1. answer a request id seen before from the memo (same body: the same reply, no second effect;
     another body: 9101), else do the business and memoize the final reply;
  2. produce the reply on <prefix>dept.tax.replies: key = the request's key (the saga id),
     partitioner murmur2_random, the CloudEvents headers, and the request's
     yishi-adapter-context and traceparent headers echoed unchanged;
  3. save the books (with --state), wait for the reply's delivery, then commit the offset.
A crash between 1 and 3 only means the request is read again and answered from the memo.

--no-echo-context leaves out yishi-adapter-context, --no-memo forgets request ids: broken
departments for the conformance check (`yishi department check --agency tax` fails against them).
"""
import argparse
import datetime
import hashlib
import json
import os
import signal
import sys
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

AGENCY = "tax"
ECHOED = ("yishi-adapter-context", "traceparent")  # copied from request to reply, byte for byte
CHINA = datetime.timezone(datetime.timedelta(hours=8))  # business dates are China Standard Time
INVOICE_NAMES = {"004": "增值税专用发票", "007": "增值税普通发票", "026": "增值税电子普通发票",
                 "028": "增值税电子专用发票", "81": "电子发票（增值税专用发票）", "82": "电子发票（普通发票）"}


class Books:
    """The department's own records and its idempotency memo, optionally kept in a JSON file."""

    def __init__(self, path):
        self.path = path
        self.data = {"taxpayers": {}, "ukeys": {}, "memo": {}, "sequence": 0}
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                self.data = json.load(f)

    def save(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f, ensure_ascii=False)
        os.replace(tmp, self.path)  # atomic: a crash leaves the old or the new books

    def next_number(self):
        self.data["sequence"] += 1
        return self.data["sequence"]


def today():
    return datetime.datetime.now(CHINA).strftime("%Y-%m-%d")


def decide(books, req):
    """The business: (result code, message, field at fault, result fields) for one request."""
    taxpayers, ukeys = books.data["taxpayers"], books.data["ukeys"]
    action, nsrsbh = req.get("jylx"), req.get("nsrsbh", "")
    if action == "SWDJ":
        for field in ("nsrsbh", "nsrmc", "xzqhdm", "hydm", "djzclx", "zzsnsrlx", "fddbrxm", "fddbrsfzjhm", "scjydz"):
            if not isinstance(req.get(field), str) or not req[field]:
                return "1001", f"{field} 缺失", field, {}
        if len(nsrsbh) != 18:
            return "2001", "纳税人识别号格式不正确", "nsrsbh", {}
        if nsrsbh in taxpayers:
            return "2002", "纳税人已登记", "nsrsbh", {}
        djxh = "1" + req["xzqhdm"][:6].ljust(6, "0") + str(books.next_number()).zfill(13)
        taxpayers[nsrsbh] = {"djxh": djxh, "active": True, "invoices": []}
        return "0000", "成功", None, {"nsrsbh": nsrsbh, "djxh": djxh, "zgswjgdm": "1" + req["xzqhdm"][:6].ljust(6, "0") + "0000",
                                      "zgswjgmc": "国家税务总局样例税务局", "djrq": today()}
    if action in ("PZHD", "UKFF"):
        t = taxpayers.get(nsrsbh)
        if not t or not t["active"]:
            return "2003", "纳税人未登记", "nsrsbh", {}
        if req.get("djxh") != t["djxh"]:
            return "2004", "登记序号不符", "djxh", {}
        if action == "PZHD":
            types = req.get("pzxx") or []
            for i, p in enumerate(types):
                if p.get("fpzldm") not in INVOICE_NAMES:
                    return "2005", "发票种类代码不正确", f"pzxx[{i}].fpzldm", {}
                if not isinstance(p.get("dzkpxe"), int) or p["dzkpxe"] > 100000:
                    return "2006", "单张限额超过 100000", f"pzxx[{i}].dzkpxe", {}
            t["invoices"] = [{"fpzldm": p["fpzldm"], "fpzlmc": INVOICE_NAMES[p["fpzldm"]], "dzkpxe": p["dzkpxe"]} for p in types]
            return "0000", "成功", None, {"hdjg": t["invoices"], "hdrq": today()}
        if not t["invoices"]:
            return "2007", "未做票种核定", "nsrsbh", {}
        if t.get("ukey"):
            return "2008", "UKey 已发放", "nsrsbh", {}
        sbbh = str(books.next_number()).zfill(12)
        t["ukey"] = sbbh
        ukeys[sbbh] = nsrsbh
        return "0000", "成功", None, {"sbbh": sbbh, "ffrq": today()}
    if action == "ZXSW":  # compensation: deregister (nothing on record is a success with nothing undone)
        t = taxpayers.get(nsrsbh)
        if t:
            t["active"] = False
        return "0000", "成功", None, {"nsrsbh": nsrsbh, "zxrq": today()}
    if action == "ZFUK":  # compensation: revoke the key and the approved invoice types
        owner = ukeys.pop(req.get("sbbh", ""), None)
        if owner:
            taxpayers[owner]["invoices"], taxpayers[owner]["ukey"] = [], None
        return "0000", "成功", None, {"sbbh": req.get("sbbh", ""), "zxrq": today()}
    return "1002", f"未知交易类型 {action}", "jylx", {}


def answer(books, req):
    """The reply body for a request, idempotent by request id (jylsh)."""
    envelope = {k: req.get(k, "") for k in ("jylsh", "jylx", "glywbh", "glhjbh")}
    fingerprint = hashlib.sha256(json.dumps(req, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    memo = None if FORGETFUL else books.data["memo"].get(req["jylsh"])
    if memo:
        if memo["fingerprint"] == fingerprint:
            return memo["reply"]  # the same answer, no second effect
        return {**envelope, "fhdm": "9101", "fhxx": "交易流水号重复且内容不同", "cwzd": "jylsh"}  # not memoized
    code, message, field, fields = decide(books, req)
    reply = {**envelope, "fhdm": code, "fhxx": message, **fields}
    if field:
        reply["cwzd"] = field
    books.data["memo"][req["jylsh"]] = {"fingerprint": fingerprint, "reply": reply}  # final answers only
    return reply


FORGETFUL = False  # --no-memo: broken on purpose, acts again on a repeated request id


def headers_of(message):
    return {k: v for k, v in (message.headers() or [])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--prefix", default="yishi.")
    ap.add_argument("--state", help="JSON file for the books and the memo (kept across restarts)")
    ap.add_argument("--no-echo-context", action="store_true", help="broken on purpose: do not echo yishi-adapter-context")
    ap.add_argument("--no-memo", action="store_true", help="broken on purpose: act again on a repeated request id")
    args = ap.parse_args()
    global FORGETFUL
    FORGETFUL = args.no_memo

    requests, replies = f"{args.prefix}dept.{AGENCY}.requests", f"{args.prefix}dept.{AGENCY}.replies"
    books = Books(args.state)
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": f"{args.prefix}dept.{AGENCY}",
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest",
                         # like the hub's services: a vanished member's partitions move on after 10 s
                         "session.timeout.ms": 10000, "max.poll.interval.ms": 60000})
    producer = Producer({"bootstrap.servers": args.bootstrap, "partitioner": "murmur2_random",
                         "enable.idempotence": True, "acks": "all"})
    consumer.subscribe([requests])
    running = [True]
    # Stop cleanly on SIGTERM/SIGINT (finish the batch, commit, leave the group), even when the
    # parent started us with these signals blocked (a blocked mask survives exec).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: running.__setitem__(0, False))
    print(f"tax department: {requests} -> {replies}", file=sys.stderr, flush=True)
    try:
        while running[0]:
            batch = consumer.consume(num_messages=100, timeout=0.2)
            done = {}  # (topic, partition) -> next offset to commit
            for m in batch:
                if not m.error():
                    done[(m.topic(), m.partition())] = m.offset() + 1
                if m.error():
                    print(f"tax department: {m.error()}", file=sys.stderr, flush=True)
                    continue
                h = headers_of(m)
                if h.get("ce_source") != b"/yishi/adapters/" + AGENCY.encode():
                    print(f"tax department: skipped {m.topic()}[{m.partition()}]@{m.offset()}: not from the tax adapter",
                          file=sys.stderr, flush=True)
                    continue
                try:
                    req = json.loads(m.value())
                    req["jylsh"]
                except (ValueError, KeyError, TypeError):
                    print(f"tax department: unreadable request at {m.topic()}[{m.partition()}]@{m.offset()}", file=sys.stderr, flush=True)
                    continue
                reply = answer(books, req)
                saga = req.get("glywbh", "")
                out = [("ce_specversion", "1.0"), ("ce_id", str(uuid.uuid4())), ("ce_source", f"/dept/{AGENCY}"),
                       ("ce_type", f"cn.gov.yishi.dept.{AGENCY}.{req.get('jylx')}.reply"),
                       ("ce_time", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")),
                       ("content-type", "application/json"), ("ce_subject", saga),
                       ("ce_yishisagaid", saga), ("ce_yishistep", req.get("glhjbh", ""))]
                out += [(k, h[k]) for k in ECHOED if k in h and not (args.no_echo_context and k == "yishi-adapter-context")]
                producer.produce(replies, key=m.key(), value=json.dumps(reply, ensure_ascii=False).encode(), headers=out)
            if done:
                books.save()
                if producer.flush(30) > 0:
                    raise KafkaException("replies not delivered within 30 s; not committing")
                # only after the books are saved and the replies are on the broker
                consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in done.items()], asynchronous=False)
    finally:
        producer.flush(10)
        consumer.close()


if __name__ == "__main__":
    main()
