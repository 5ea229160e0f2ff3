#!/usr/bin/env python3
"""Deterministic generator of the seed applications (stdlib only, fixed seed).

Writes applications.jsonl (one application form per line, docs/application-form.md) and
manifest.json (application id -> expected outcome, and for the deliberately bad ones the
reason and the field at fault). Run from anywhere: python3 seeds/applications/generate.py
The output is committed; rerunning must reproduce it byte for byte.
"""
import json
import os
import random
from datetime import datetime, timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "departments")
SEED = 20260302
COUNT = 240

rng = random.Random(SEED)
regions = json.load(open(os.path.join(REFERENCE, "regions.json"), encoding="utf-8"))["regions"]
forbidden = [w["word"] for w in json.load(open(os.path.join(REFERENCE, "forbidden-words.json"), encoding="utf-8"))["words"]]
region_words = set()
for r in regions:
    region_words.update(r["namePrefixes"])
    region_words.add(r["district"])
    region_words.add(r["district"][:-1])

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤") + ["欧阳", "司马", "上官"]
GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉鹏宇浩婷雪琳晨阳欣怡子涵梓轩俊峰志强海燕佳颖思远博文雨桐嘉怡一鸣")
TRADE_A = list("云星锦瑞嘉博恒致青明启兴鼎泰润鑫盛宏德汇聚航拓睿沐禾朗驰弘晟悦卓越铭谷森源易")
TRADE_B = list("栖河程丰禾远信行辰川途峰逸誉澜岳泽航图创达合章然尚邦橙语知微帆樽序境")
STREETS = ["人民路", "解放路", "中山路", "建设路", "文化路", "和平路", "新华路", "长江路", "学院路", "滨河路", "光明街", "朝阳街", "东风路", "青年路", "胜利街"]
MOBILE = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155", "156", "157",
          "158", "159", "166", "176", "177", "178", "180", "181", "182", "183", "185", "186", "187", "188", "189", "191", "198", "199"]
BANKS = [("ICBC", "中国工商银行"), ("ABC", "中国农业银行"), ("BOC", "中国银行"), ("CCB", "中国建设银行"), ("BOCOM", "交通银行"), ("CMB", "招商银行")]
CAPITALS = [100000, 200000, 300000, 500000, 1000000, 2000000, 3000000, 5000000]

# bundle -> [(industry code, [industry words], business scope)], permits
INDUSTRIES = {
    "enterprise-opening": ([
        ("I6513", ["科技", "网络科技", "软件"], "软件开发；信息技术咨询服务；技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广"),
        ("I6531", ["信息技术", "智能科技"], "信息系统集成服务；信息技术咨询服务；计算机软硬件及辅助设备零售"),
        ("L7259", ["文化传媒", "广告"], "广告设计、代理；广告制作；广告发布；组织文化艺术交流活动"),
        ("K7020", ["物业管理", "物业服务"], "物业管理；停车场服务；专业保洁、清洗、消毒服务"),
        ("F5181", ["贸易", "商贸"], "货物进出口；技术进出口；日用百货销售；五金产品批发"),
        ("O8010", ["家政服务"], "家政服务；养老服务；专业保洁、清洗、消毒服务"),
    ], []),
    "restaurant-opening": ([
        ("H6210", ["餐饮", "餐饮管理"], "餐饮服务；食品销售；餐饮管理"),
        ("H6220", ["快餐"], "餐饮服务；食品销售；外卖递送服务"),
        ("H6232", ["咖啡"], "餐饮服务；食品销售；咖啡制作服务"),
    ], ["food-business"]),
    "convenience-store-opening": ([
        ("F5213", ["便利店"], "食品销售；日用百货销售；日用品销售；文具用品零售"),
        ("F5212", ["超市"], "食品销售；日用百货销售；新鲜水果零售；日用品销售"),
    ], ["food-business"]),
    "barbershop-opening": ([
        ("O8040", ["美发", "理发", "美容美发"], "理发服务；生活美容服务；化妆品零售"),
    ], ["public-place-hygiene"]),
}


def id_check(body):
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


def person():
    male = rng.random() < 0.55
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2, 2])))
    birth = datetime(1962, 1, 1) + timedelta(days=rng.randrange(0, 365 * 41))
    seq = rng.randrange(0, 500) * 2 + (1 if male else 0)
    body = rng.choice(regions)["code"] + birth.strftime("%Y%m%d") + "%03d" % seq
    phone = rng.choice(MOBILE) + "%08d" % rng.randrange(0, 10 ** 8)
    return {"name": name, "idNumber": body + id_check(body), "phone": phone}


def trade_name(taken, region, word):
    while True:
        t = rng.choice(TRADE_A) + rng.choice(TRADE_B) + (rng.choice(TRADE_B) if rng.random() < 0.2 else "")
        if t[0] == t[1] or t in region_words or any(f in t for f in forbidden) or (region, t, word) in taken:
            continue
        return t


def split(total, n):
    if n == 1:
        return [total]
    cut = sorted(rng.sample(range(1, 20), n - 1))
    parts = [total * (b - a) // 20 for a, b in zip([0] + cut, cut + [20])]
    parts[0] += total - sum(parts)
    return parts


def application(i, when, taken, bundle=None, region=None, trade=None, word=None):
    bundle = bundle or rng.choices(list(INDUSTRIES), weights=[70, 12, 10, 8])[0]
    industries, permits = INDUSTRIES[bundle]
    code, words, scope = rng.choice([ind for ind in industries if word is None or word in ind[1]])
    word = word or rng.choice(words)
    region = region or rng.choice(regions)
    trade = trade or trade_name(taken, region["code"], word)
    joint = bundle == "enterprise-opening" and rng.random() < 0.06
    form_word = "股份有限公司" if joint else rng.choices(["有限公司", "有限责任公司"], weights=[85, 15])[0]
    prefix = region["namePrefixes"][0 if rng.random() < 0.8 else 1]
    legal = person()
    capital = rng.choice(CAPITALS[4:] if joint else CAPITALS)
    holders = [legal] + [person() for _ in range(rng.choice([1, 2]) if joint else rng.choice([0, 0, 1, 2]))]
    shares = split(capital, len(holders))
    street = rng.choice(STREETS)
    place = region["city"] + region["district"] if region["province"] == region["city"] else region["province"] + region["city"] + region["district"]
    bank_code, bank_name = rng.choice(BANKS)
    general = rng.random() < 0.2
    contact = legal if rng.random() < 0.7 else person()
    materials = ["articles-of-association", "lease-contract", "id-copy-legal-representative"]
    if permits:
        materials.append("premises-layout")
    return {
        "applicationId": "APP-%s-%06d" % (when.strftime("%Y%m%d"), i),
        "bundle": bundle,
        "submittedAt": when.strftime("%Y-%m-%dT%H:%M:00+08:00"),
        "region": region["code"],
        "company": {
            "proposedName": prefix + trade + word + form_word,
            "tradeName": trade,
            "industryWord": word,
            "organizationForm": form_word,
            "industryCode": code,
            "entityType": "joint-stock" if joint else "limited-liability",
            "registeredCapital": capital,
            "address": "%s%s %d 号%s" % (place, street, rng.randrange(1, 400), rng.choice(["", " 1 层", " 2 层", " 3 楼 301 室", " 12 楼 1203 室"])),
            "businessScope": scope,
        },
        "legalRepresentative": legal,
        "shareholders": [{"name": h["name"], "idNumber": h["idNumber"], "contribution": s} for h, s in zip(holders, shares)],
        "employees": {"expectedCount": rng.randrange(1, 31)},
        "seals": ["company", "finance", "invoice", "legal-representative"] + (["contract"] if rng.random() < 0.15 else []),
        "tax": {"taxpayerType": "general" if general else "small-scale",
                "invoiceTypes": ["digital-general", "digital-special"] if general else [rng.choice(["digital-general", "vat-general-electronic"])]},
        "bank": {"bankCode": bank_code, "branchName": "%s%s%s支行" % (bank_name, region["namePrefixes"][0], street[:-1])},
        "permits": list(permits),
        "materials": [{"type": m, "provided": True} for m in materials],
        "contact": {"name": contact["name"], "phone": contact["phone"]},
    }


def working_instants():
    day = datetime(2026, 3, 2, 9, 0)
    while True:
        if day.weekday() < 5:
            for minute in sorted(rng.randrange(0, 450) for _ in range(12)):
                yield day + timedelta(minutes=minute)
        day += timedelta(days=1)


def main():
    # Which positions carry which deliberate defect (fixed by the seed).
    positions = list(range(20, COUNT))
    rng.shuffle(positions)
    defects = {}
    for kind, n in [("id-check-digit", 8), ("forbidden-word", 8), ("duplicate-name", 6), ("material-missing", 10)]:
        for p in positions[:n]:
            defects[p] = kind
        positions = positions[n:]
    forbidden_trades = ["中华", "特供", "央企", "第一", "国际", "顶级", "最美", "国家"]

    apps, manifest, taken = [], {}, set()
    instants = working_instants()
    for i in range(COUNT):
        when = next(instants)
        kind = defects.get(i)
        if kind == "duplicate-name":
            first = rng.choice([a for a in apps if manifest[a["applicationId"]]["expected"] == "complete"])
            region = next(r for r in regions if r["code"] == first["region"])
            app = application(i + 1, when, taken, bundle=first["bundle"], region=region,
                              trade=first["company"]["tradeName"], word=first["company"]["industryWord"])
            entry = {"expected": "rejected", "reason": "duplicate-name", "field": "$.company.proposedName",
                     "agency": "business-registration", "code": "E2005", "duplicateOf": first["applicationId"]}
        elif kind == "forbidden-word":
            app = application(i + 1, when, taken)
            c = app["company"]
            trade = forbidden_trades.pop()
            prefix = c["proposedName"][: -len(c["tradeName"] + c["industryWord"] + c["organizationForm"])]
            c["tradeName"], c["proposedName"] = trade, prefix + trade + c["industryWord"] + c["organizationForm"]
            entry = {"expected": "rejected", "reason": "forbidden-word", "field": "$.company.tradeName",
                     "agency": "business-registration", "code": "E2001", "word": next(f for f in forbidden if f in trade)}
        else:
            app = application(i + 1, when, taken)
            entry = {"expected": "complete"}
            if kind == "id-check-digit":
                legal = app["legalRepresentative"]
                good = legal["idNumber"]
                bad = good[:17] + rng.choice([c for c in "0123456789X" if c != good[17]])
                legal["idNumber"] = bad
                app["shareholders"][0]["idNumber"] = bad
                entry = {"expected": "rejected", "reason": "id-check-digit", "field": "$.legalRepresentative.idNumber",
                         "agency": "business-registration", "code": "E3004"}
            elif kind == "material-missing":
                app["materials"][1]["provided"] = False
                entry = {"expected": "supplement-needed", "reason": "material-missing", "field": "$.materials[1]",
                         "material": "lease-contract"}
        c = app["company"]
        taken.add((app["region"], c["tradeName"], c["industryWord"]))
        apps.append(app)
        manifest[app["applicationId"]] = entry

    with open(os.path.join(HERE, "applications.jsonl"), "w", encoding="utf-8") as f:
        for a in apps:
            f.write(json.dumps(a, ensure_ascii=False, separators=(",", ":")) + "\n")
    counts = {}
    for e in manifest.values():
        key = e.get("reason", e["expected"])
        counts[key] = counts.get(key, 0) + 1
    doc = {
        "description": "Expected outcome of every seed application in applications.jsonl. expected: complete | rejected | "
                       "supplement-needed; reason and field (JSON path into the form) say why; agency and code: the "
                       "department and native code that reject it.",
        "generator": "seeds/applications/generate.py",
        "seed": SEED,
        "counts": dict(sorted(counts.items())),
        "applications": manifest,
    }
    with open(os.path.join(HERE, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
