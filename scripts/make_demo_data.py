"""Write the demo data of the projects and cost_center packs (module_packs/*/demo/*.json).

The demo company 华建建设 runs three projects started over the last six months (and one in
tender). Dates are tokens (`@today-N`) so the demo stays current whenever it is loaded; the
numbers come from a seeded generator, so running this again gives the same files. Run it
after changing the generator; the JSON it writes is committed (the packs stay pure data):

    .venv/bin/python scripts/make_demo_data.py
"""

from __future__ import annotations

import json
import random
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROJECTS_DEMO = ROOT / "module_packs" / "projects" / "demo"
COST_DEMO = ROOT / "module_packs" / "cost_center" / "demo"
CENT = Decimal("0.01")

USERS = [
    ("zhangwei", "张伟", ["project_manager"]),
    ("chenjing", "陈静", ["project_manager"]),
    ("lina", "李娜", ["site_engineer"]),
    ("zhoupeng", "周鹏", ["site_engineer"]),
    ("wangfang", "王芳", ["cost_engineer"]),
    ("zhaomin", "赵敏", ["finance"]),
    ("liuqiang", "刘强", ["crew_leader"]),
    ("sunli", "孙丽", ["client_rep"]),
    ("hegang", "何刚", ["cost_consultant"]),
]

COUNTERPARTIES = [
    ("C001", "杭州滨江置业有限公司", "client", "黄志明"),
    ("C002", "杭州城西教育投资发展有限公司", "client", "吴晓燕"),
    ("C003", "杭州临平经开区建设投资有限公司", "client", "钱伟"),
    ("C004", "杭州萧山商业发展有限公司", "client", "沈丽"),
    ("S001", "浙江恒力基础工程有限公司", "subcontractor", "郑强"),
    ("S002", "浙江安达机电安装工程有限公司", "subcontractor", "冯建华"),
    ("S003", "杭州消安消防工程有限公司", "subcontractor", "韩东"),
    ("S004", "杭州锦绣幕墙门窗有限公司", "subcontractor", "杨帆"),
    ("S005", "浙江美嘉装饰工程有限公司", "subcontractor", "朱敏"),
    ("S006", "浙江广厦劳务有限公司", "subcontractor", "徐刚"),
    ("M001", "杭州钢联物资贸易有限公司", "supplier", "林涛"),
    ("M002", "浙江南方混凝土有限公司", "supplier", "何建国"),
    ("M003", "杭州华东建材有限公司", "supplier", "高峰"),
    ("M004", "杭州通达机械设备租赁有限公司", "supplier", "罗平"),
    ("L001", "王建国木工班组", "crew", "王建国"),
    ("L002", "李志强钢筋班组", "crew", "李志强"),
    ("L003", "陈永泥工班组", "crew", "陈永"),
    ("L004", "刘海杂工班组", "crew", "刘海"),
    ("Z001", "浙江中诚工程造价咨询有限公司", "consultant", "梁静"),
]

# code, name, client, contract value (CNY), address, start (days ago), duration (days), manager
PROJECTS = [
    (
        "P2401",
        "滨江花园二期住宅工程",
        "C001",
        186_500_000,
        "杭州市滨江区江南大道与秋溢路交叉口",
        185,
        720,
        "zhangwei",
    ),
    (
        "P2402",
        "城西实验学校新建工程",
        "C002",
        98_600_000,
        "杭州市西湖区西园路 18 号",
        160,
        540,
        "zhangwei",
    ),
    (
        "P2403",
        "临平智造产业园 3# 厂房",
        "C003",
        64_300_000,
        "杭州市临平区顺达路 99 号",
        130,
        400,
        "chenjing",
    ),
]
TENDER = ("P2501", "萧山商业综合体", "C004", 245_000_000, "杭州市萧山区市心北路", "chenjing")

SECTIONS = {
    "P2401": [("A", "1# 楼"), ("B", "2# 楼"), ("C", "3# 楼"), ("D", "地下室")],
    "P2402": [("A", "教学楼"), ("B", "综合楼"), ("C", "风雨操场")],
    "P2403": [("A", "主厂房"), ("B", "办公楼"), ("C", "室外工程")],
}

MEMBERS = {
    "P2401": [
        ("zhangwei", "manager"),
        ("lina", "site-engineer"),
        ("wangfang", "cost-engineer"),
        ("zhaomin", "finance"),
        ("liuqiang", "crew-leader"),
        ("sunli", "client-rep"),
        ("hegang", "consultant"),
    ],
    "P2402": [
        ("zhangwei", "manager"),
        ("zhoupeng", "site-engineer"),
        ("wangfang", "cost-engineer"),
        ("zhaomin", "finance"),
        ("liuqiang", "crew-leader"),
        ("hegang", "consultant"),
    ],
    "P2403": [
        ("chenjing", "manager"),
        ("zhoupeng", "site-engineer"),
        ("wangfang", "cost-engineer"),
        ("zhaomin", "finance"),
    ],
}

# account: share of the target cost, month (0-5 since start) the work starts, counterparty
# of its contract (None: no contract yet, an estimate), category source of actual costs
ACCOUNTS = {
    "0101": (0.010, 0, None),
    "0102": (0.140, 1, "S006"),
    "0103": (0.030, 2, None),
    "0104": (0.025, 0, None),
    "0201": (0.130, 1, "M001"),
    "0202": (0.100, 1, "M002"),
    "0203": (0.030, 1, "M003"),
    "0204": (0.020, 3, None),
    "0205": (0.015, 4, None),
    "0206": (0.020, 9, None),
    "0207": (0.030, 9, None),
    "0301": (0.018, 1, "M004"),
    "0302": (0.007, 4, None),
    "0303": (0.012, 0, None),
    "0304": (0.008, 1, None),
    "0305": (0.005, 0, None),
    "0401": (0.070, 0, "S001"),
    "0402": (0.090, 5, "S002"),
    "0403": (0.030, 9, "S003"),
    "0404": (0.050, 9, "S004"),
    "0405": (0.060, 9, None),
    "0406": (0.025, 12, None),
    "0501": (0.022, 0, None),
    "0502": (0.018, 2, None),
    "0503": (0.012, 0, None),
    "0504": (0.003, 3, None),
    "0505": (0.004, 1, None),
    "0601": (0.006, 0, None),
    "0602": (0.002, 0, None),
    "0603": (0.005, 0, None),
    "0604": (0.003, 0, None),
}
CATEGORY_SOURCE = {
    "01": "labour",
    "02": "material",
    "03": "expense",
    "04": "subcontract",
    "05": "expense",
    "06": "expense",
}
CONTRACT_NAMES = {
    "0102": "主体结构劳务分包合同",
    "0201": "钢筋采购合同",
    "0202": "商品混凝土供应合同",
    "0203": "模板木方采购合同",
    "0301": "塔吊租赁合同",
    "0401": "桩基工程专业分包合同",
    "0402": "机电安装工程专业分包合同",
    "0403": "消防工程专业分包合同",
    "0404": "幕墙门窗工程专业分包合同",
}
TERMS = (
    "按月进度付款，付至已完工程量的 80%；竣工验收后付至 97%，余款为质保金，缺陷责任期满后无息退还。"
)
STAGE_NAMES = {"bid": "投标", "contract": "合同", "drawing": "施工图"}
ENTRY_TEXT = {
    "labour": "人工费结算",
    "material": "材料进场结算",
    "expense": "费用报销",
    "subcontract": "分包进度结算",
}
# Accounts a project's estimate deliberately overruns (soft control warnings in the demo).
SOFT_OVERRUNS = {("P2401", "0101"): Decimal("1.12"), ("P2402", "0303"): Decimal("1.08")}
# Approved changes (dynamic cost), booked against the expense contract of the account.
CHANGES = [
    ("P2401", "0401", "P2401-BG-0001", Decimal("1680000.00"), 120, "桩长加长变更（地勘报告修正）"),
    ("P2401", "0201", "P2401-BG-0002", Decimal("386500.00"), 75, "地下室顶板加厚增加钢筋"),
    ("P2402", "0102", "P2402-BG-0001", Decimal("215000.00"), 60, "风雨操场基础形式变更增加用工"),
]


def money(value: Any) -> str:
    """Return an amount as text with two decimals."""
    return str(Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP))


def write(folder: Path, name: str, document: dict[str, Any]) -> None:
    """Write one demo file: a readable header, one record per line."""
    folder.mkdir(parents=True, exist_ok=True)
    records = document.pop("records", None) or document.pop("users")
    key = "records" if "entity" in document else "users"
    head = json.dumps(document, ensure_ascii=False, sort_keys=True)[:-1]
    lines = ",\n".join("  " + json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records)
    comma = ", " if document else ""
    text = f'{head}{comma}"{key}": [\n{lines}\n]}}\n'
    (folder / name).write_text(text, encoding="utf-8")


def project_files() -> None:
    """Write the projects pack's demo files."""
    write(
        PROJECTS_DEMO,
        "users.json",
        {
            "users": [
                {"username": u, "display_name": n, "roles": r, "locale": "zh-CN"}
                for u, n, r in USERS
            ]
        },
    )
    rng = random.Random(7)
    write(
        PROJECTS_DEMO,
        "counterparties.json",
        {
            "entity": "counterparty",
            "key": "code",
            "records": [
                {
                    "code": c,
                    "name": n,
                    "kind": k,
                    "contact": p,
                    "phone": f"1{rng.randint(3, 8)}{rng.randint(100000000, 999999999)}",
                    "bank_name": rng.choice(
                        ["中国建设银行杭州分行", "中国工商银行杭州分行", "杭州银行", "浙商银行"]
                    ),
                    "bank_account": " ".join(str(rng.randint(1000, 9999)) for _ in range(5)),
                    "address": "浙江省杭州市",
                }
                for c, n, k, p in COUNTERPARTIES
            ],
        },
    )
    projects = [
        {
            "code": c,
            "name": n,
            "client": {"code": cl},
            "contract_value": money(v),
            "address": a,
            "required_start": f"@today-{s + 15}",
            "required_finish": f"@today+{d - s - 15}",
            "actual_start": f"@today-{s}",
            "manager": {"username": m},
            "status": "active",
        }
        for c, n, cl, v, a, s, d, m in PROJECTS
    ]
    c, n, cl, v, a, m = TENDER
    projects.append(
        {
            "code": c,
            "name": n,
            "client": {"code": cl},
            "contract_value": money(v),
            "address": a,
            "required_start": "@today+60",
            "required_finish": "@today+1000",
            "manager": {"username": m},
            "status": "planning",
        }
    )
    write(PROJECTS_DEMO, "projects.json", {"entity": "project", "key": "code", "records": projects})
    write(
        PROJECTS_DEMO,
        "sections.json",
        {
            "entity": "section",
            "records": [
                {"project": {"code": p}, "code": f"{p}-{c}", "name": n}
                for p, items in SECTIONS.items()
                for c, n in items
            ],
        },
    )
    write(
        PROJECTS_DEMO,
        "members.json",
        {
            "entity": "member",
            "records": [
                {
                    "project": {"code": p},
                    "user": {"username": u},
                    "project_role": r,
                    "joined_on": f"@today-{next(x[5] for x in PROJECTS if x[0] == p)}",
                }
                for p, items in MEMBERS.items()
                for u, r in items
            ],
        },
    )


def targets_of(project: tuple[Any, ...], rng: random.Random) -> dict[str, Decimal]:
    """Return the final target cost per account of a project (88 % of its contract value)."""
    shares = {
        a: Decimal(str(s)) * Decimal(str(rng.uniform(0.85, 1.15)))
        for a, (s, _m, _c) in ACCOUNTS.items()
    }
    total = sum(shares.values())
    budget = Decimal(project[3]) * Decimal("0.88")
    return {a: (budget * s / total).quantize(Decimal("100")) for a, s in shares.items()}


def cost_files() -> dict[str, Any]:
    """Write the cost_center demo files (and the contracts, which need the same numbers)."""
    rng = random.Random(2024)
    contracts, headers, finals, lines, commitments, entries = [], [], [], [], [], []
    for project in PROJECTS:
        code, _n, client, value, _a, started, _d, _m = project
        targets = targets_of(project, rng)
        contracts.append(
            _contract(
                f"{code}-SR-001",
                code,
                client,
                "income",
                "施工总承包合同",
                value,
                started + 5,
                "5",
                changes=Decimal(value) * Decimal("0.0125"),
            )
        )
        _target_versions(code, started, targets, headers, finals, lines)
        contract_of: dict[str, str] = {}
        for account, (_s, month, party) in ACCOUNTS.items():
            if party is None or 30 * month + 10 >= started:
                continue  # no contract before the work is near
            number = f"{code}-ZC-{len(contract_of) + 1:03d}"
            contract_of[account] = number
            amount = (targets[account] * Decimal(str(rng.uniform(0.86, 0.95)))).quantize(
                Decimal("100")
            )
            changed = sum((c[3] for c in CHANGES if c[0] == code and c[1] == account), Decimal(0))
            contracts.append(
                _contract(
                    number,
                    code,
                    party,
                    "expense",
                    CONTRACT_NAMES[account],
                    amount,
                    started - 30 * month - 3 if month else started - 2,
                    "3",
                    changes=changed,
                )
            )
            days = max(1, started - 30 * month - 3)
            commitments.append(
                {
                    "project": {"code": code},
                    "account": {"code": account},
                    "kind": "contract",
                    "contract": {"code": number},
                    "amount": money(amount),
                    "date": f"@today-{days}",
                    "source_ref": number,
                    "note": CONTRACT_NAMES[account],
                }
            )
        for project_code, account, ref, amount, days, note in CHANGES:
            if project_code == code:
                commitments.append(
                    {
                        "project": {"code": code},
                        "account": {"code": account},
                        "kind": "change",
                        "contract": {"code": contract_of[account]},
                        "amount": money(amount),
                        "date": f"@today-{days}",
                        "source_ref": ref,
                        "note": note,
                    }
                )
        for account in ACCOUNTS:
            committed = sum(
                (
                    Decimal(c["amount"])
                    for c in commitments
                    if c["project"]["code"] == code and c["account"]["code"] == account
                ),
                Decimal(0),
            )
            factor = SOFT_OVERRUNS.get((code, account)) or Decimal(str(rng.uniform(0.9, 0.99)))
            remaining = (targets[account] * factor - committed).quantize(Decimal("100"))
            if account in contract_of:
                remaining = (targets[account] - committed) * Decimal("0.6")
                remaining = remaining.quantize(Decimal("100"))
            if remaining > 0:
                commitments.append(
                    {
                        "project": {"code": code},
                        "account": {"code": account},
                        "kind": "estimate",
                        "amount": money(remaining),
                        "date": f"@today-{rng.randint(5, 40)}",
                        "source_ref": f"{code}-YG-{account}",
                        "note": "预估待发生成本",
                    }
                )
        entries += _entries(code, started, targets, contract_of, rng)
    write(
        PROJECTS_DEMO, "contracts.json", {"entity": "contract", "key": "code", "records": contracts}
    )
    write(
        COST_DEMO, "target_costs.json", {"entity": "target_cost", "key": "code", "records": headers}
    )
    write(COST_DEMO, "target_cost_lines.json", {"entity": "target_cost_line", "records": lines})
    write(
        COST_DEMO,
        "target_costs_final.json",
        {"entity": "target_cost", "key": "code", "records": finals},
    )
    write(COST_DEMO, "commitments.json", {"entity": "commitment", "records": commitments})
    write(COST_DEMO, "cost_entries.json", {"entity": "cost_entry", "records": entries})
    return {"entries": len(entries), "commitments": len(commitments)}


def _contract(
    number: str,
    project: str,
    party: str,
    direction: str,
    name: str,
    amount: Any,
    days: int,
    retention: str,
    changes: Decimal,
) -> dict[str, Any]:
    return {
        "code": number,
        "project": {"code": project},
        "counterparty": {"code": party},
        "direction": direction,
        "name": name,
        "amount": money(amount),
        "changes_amount": money(changes),
        "signed_on": f"@today-{max(days, 1)}",
        "retention_pct": retention,
        "status": "signed",
        "terms": TERMS,
    }


def _target_versions(
    code: str,
    started: int,
    targets: dict[str, Decimal],
    headers: list[Any],
    finals: list[Any],
    lines: list[Any],
) -> None:
    """Add the project's target cost versions: bid (retired), contract (current), and for
    P2402 a construction-drawing version still in draft."""
    versions = [("bid", Decimal("1.03"), started + 40, False)]
    versions.append(("contract", Decimal("1"), started + 5, True))
    if code == "P2402":
        versions.append(("drawing", Decimal("0.985"), 10, None))
    for stage, factor, days, current in versions:
        number = f"{code}-MB-{stage.upper()}-1"
        headers.append(
            {
                "code": number,
                "project": {"code": code},
                "stage": stage,
                "revision": 1,
                "name": f"{code} 目标成本（{STAGE_NAMES[stage]}阶段）",
                "prepared_on": f"@today-{days}",
                "prepared_by": {"username": "wangfang"},
                "basis": "依据招标文件、施工图预算及企业内部定额编制",
            }
        )
        for account, amount in targets.items():
            lines.append(
                {
                    "target_cost": {"code": number},
                    "account": {"code": account},
                    "amount": money(amount * factor),
                }
            )
        if current is not None:
            finals.append({"code": number, "status": "approved", "is_current": current})
        else:  # saved again so its total (computed from the lines) is up to date
            finals.append({"code": number, "basis": "依据施工图预算编制，待项目经理审批"})


def _entries(
    code: str,
    started: int,
    targets: dict[str, Decimal],
    contract_of: dict[str, str],
    rng: random.Random,
) -> list[dict[str, Any]]:
    """Return the actual cost entries of a project, month by month since it started."""
    out = []
    months = started // 30
    for account, (_s, begin, party) in ACCOUNTS.items():
        if begin >= months:
            continue
        source = CATEGORY_SOURCE[account[:2]]
        # Work on an account spreads over ~14 months; actuals lag the work by a month.
        monthly = targets[account] / Decimal(14)
        for month in range(begin, months):
            for part in range(rng.choice((1, 1, 2))):
                days = started - 30 * month - rng.randint(3, 27)
                if days < 1:
                    continue
                amount = monthly * Decimal(str(rng.uniform(0.6, 1.1))) / (part + 1)
                ref = f"{code}-{source[:2].upper()}-{account}-{month + 1:02d}{part + 1}"
                entry = {
                    "project": {"code": code},
                    "account": {"code": account},
                    "date": f"@today-{days}",
                    "amount": money(amount),
                    "source": source,
                    "source_ref": ref,
                    "description": f"{ENTRY_TEXT[source]}（第 {month + 1} 月）",
                }
                if party:
                    entry["counterparty"] = {"code": party}
                out.append(entry)
    return out


def main() -> None:
    """Write every demo file and print what was written."""
    project_files()
    counts = cost_files()
    print(f"wrote demo data: {counts['commitments']} commitments, {counts['entries']} cost entries")


if __name__ == "__main__":
    main()
