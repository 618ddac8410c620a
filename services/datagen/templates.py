"""Fixed parameter values of the synthetic manufacturer (documented in docs/synthetic-data.md).

Everything here is a constant; what a seed draws (attribute demand effects, launch dates, noise)
lives in :mod:`services.datagen.catalog` and :mod:`services.datagen.world`.
"""

from __future__ import annotations

from dataclasses import dataclass

ATTRIBUTES = ("fabric", "colour", "fit", "size", "option")


@dataclass(frozen=True)
class FamilyTemplate:
    family_id: str
    name: str
    base_price: float  # EUR, list price of a cotton/regular/no-option unit
    base_hours: float  # processing hours per unit on a line of speed 1.0
    volume: float  # relative demand level of the family
    season_amplitude: float  # A_f in 1 + A_f cos(2 pi (w - peak_f) / 52)
    season_peak_week: int  # week of year with the highest demand
    elasticity: float  # price elasticity e_f in (price / list)^-e_f
    custom_share: float  # share of expected units ordered as custom (made-to-order) orders
    fabric_per_unit: float  # metres (kg of yarn for knitwear) of fabric per size-m unit
    fabric_prefix: str  # material id prefix: FAB (woven, metres) or YRN (yarn, kg)
    values: dict[str, tuple[str, ...]]
    trims: tuple[tuple[str, float, str], ...] = ()  # (material_id, quantity, condition)


FAMILIES: tuple[FamilyTemplate, ...] = (
    FamilyTemplate(
        "SHR", "Shirts", 59.0, 0.55, 1.3, 0.15, 20, 1.6, 0.10, 1.6, "FAB",
        {
            "fabric": ("cotton", "linen", "oxford", "denim", "flannel"),
            "colour": ("white", "light_blue", "navy", "black", "pink", "green", "grey"),
            "fit": ("slim", "regular", "relaxed"),
            "size": ("s", "m", "l", "xl"),
            "option": ("none", "monogram", "french_cuff"),
        },
        (("BTN-SHIRT", 9.0, ""), ("BTN-SHIRT", 2.0, "option=french_cuff"),
         ("INTERFACING", 0.3, ""), ("THR-EMB", 0.002, "option=monogram")),
    ),
    FamilyTemplate(
        "TRS", "Trousers", 79.0, 0.70, 1.0, 0.10, 40, 1.4, 0.12, 1.4, "FAB",
        {
            "fabric": ("cotton", "wool", "denim", "linen", "corduroy"),
            "colour": ("navy", "black", "grey", "khaki", "olive", "brown"),
            "fit": ("slim", "regular", "wide"),
            "size": ("s", "m", "l", "xl"),
            "option": ("none", "cuffs", "pleats"),
        },
        (("BTN-STD", 1.0, ""), ("ZIP-METAL", 1.0, "")),
    ),
    FamilyTemplate(
        "JKT", "Jackets", 189.0, 1.60, 0.5, 0.35, 44, 1.1, 0.20, 2.2, "FAB",
        {
            "fabric": ("wool", "tweed", "linen", "denim", "corduroy"),
            "colour": ("navy", "charcoal", "brown", "olive", "black", "camel"),
            "fit": ("slim", "regular"),
            "size": ("s", "m", "l", "xl"),
            "option": ("none", "lining_silk", "monogram"),
        },
        (("BTN-HORN", 6.0, ""), ("INTERFACING", 0.8, ""), ("LIN-VISCOSE", 1.4, "option=none"),
         ("LIN-VISCOSE", 1.4, "option=monogram"), ("LIN-SILK", 1.4, "option=lining_silk"),
         ("THR-EMB", 0.002, "option=monogram")),
    ),
    FamilyTemplate(
        "DRS", "Dresses", 119.0, 1.00, 0.8, 0.30, 24, 1.5, 0.18, 2.0, "FAB",
        {
            "fabric": ("cotton", "silk", "linen", "jersey", "wool"),
            "colour": ("black", "red", "navy", "floral", "white", "green"),
            "fit": ("a_line", "sheath", "wrap"),
            "size": ("xs", "s", "m", "l"),
            "option": ("none", "pockets", "lining_silk"),
        },
        (("ZIP-METAL", 1.0, ""), ("LIN-SILK", 1.2, "option=lining_silk")),
    ),
    FamilyTemplate(
        "SKT", "Skirts", 69.0, 0.60, 0.7, 0.25, 22, 1.5, 0.10, 1.0, "FAB",
        {
            "fabric": ("cotton", "denim", "linen", "wool", "corduroy"),
            "colour": ("black", "navy", "camel", "floral", "grey", "red"),
            "fit": ("a_line", "pencil", "pleated"),
            "size": ("xs", "s", "m", "l"),
            "option": ("none", "pockets"),
        },
        (("BTN-STD", 1.0, ""), ("ZIP-METAL", 1.0, "")),
    ),
    FamilyTemplate(
        "CT", "Coats", 249.0, 2.00, 0.4, 0.50, 47, 1.0, 0.22, 2.8, "FAB",
        {
            "fabric": ("wool", "cashmere", "tweed", "technical"),
            "colour": ("camel", "navy", "black", "grey", "olive", "burgundy"),
            "fit": ("regular", "oversized"),
            "size": ("s", "m", "l", "xl"),
            "option": ("none", "lining_silk", "hood"),
        },
        (("BTN-HORN", 5.0, ""), ("INTERFACING", 0.9, ""), ("LIN-VISCOSE", 1.8, "option=none"),
         ("LIN-VISCOSE", 1.8, "option=hood"), ("LIN-SILK", 1.8, "option=lining_silk"),
         ("ZIP-METAL", 1.0, "option=hood")),
    ),
    FamilyTemplate(
        "KNT", "Knitwear", 89.0, 0.80, 0.9, 0.40, 46, 1.3, 0.08, 0.45, "YRN",
        {
            "fabric": ("merino", "cashmere", "cotton", "lambswool"),
            "colour": ("grey", "navy", "cream", "burgundy", "green", "black"),
            "fit": ("slim", "regular", "oversized"),
            "size": ("s", "m", "l", "xl"),
            "option": ("none", "monogram"),
        },
        (("THR-EMB", 0.002, "option=monogram"),),
    ),
    FamilyTemplate(
        "BLZ", "Blazers", 169.0, 1.40, 0.5, 0.15, 12, 1.2, 0.20, 2.0, "FAB",
        {
            "fabric": ("wool", "linen", "cotton", "tweed"),
            "colour": ("navy", "grey", "beige", "black", "green", "brown"),
            "fit": ("slim", "regular"),
            "size": ("s", "m", "l", "xl"),
            "option": ("none", "monogram", "lining_silk"),
        },
        (("BTN-HORN", 4.0, ""), ("INTERFACING", 0.7, ""), ("LIN-VISCOSE", 1.3, "option=none"),
         ("LIN-VISCOSE", 1.3, "option=monogram"), ("LIN-SILK", 1.3, "option=lining_silk"),
         ("THR-EMB", 0.002, "option=monogram")),
    ),
)  # fmt: skip

#: fabric -> (list-price multiplier, processing-hours multiplier, material EUR per m (kg for yarn),
#: scrap rate)
FABRICS: dict[str, tuple[float, float, float, float]] = {
    "cotton": (1.00, 1.00, 7.0, 0.010),
    "linen": (1.15, 1.10, 12.0, 0.020),
    "oxford": (1.05, 1.00, 9.0, 0.010),
    "denim": (1.05, 1.15, 10.0, 0.015),
    "flannel": (1.05, 1.05, 9.0, 0.012),
    "wool": (1.30, 1.15, 22.0, 0.015),
    "corduroy": (1.10, 1.12, 11.0, 0.018),
    "tweed": (1.35, 1.20, 26.0, 0.020),
    "silk": (1.60, 1.30, 35.0, 0.035),
    "jersey": (0.95, 0.95, 8.0, 0.012),
    "cashmere": (2.00, 1.25, 60.0, 0.030),
    "technical": (1.25, 1.20, 18.0, 0.015),
    "merino": (1.30, 1.05, 28.0, 0.012),
    "lambswool": (1.15, 1.05, 20.0, 0.012),
}

#: fit -> (list-price multiplier, processing-hours multiplier)
FITS: dict[str, tuple[float, float]] = {
    "slim": (1.00, 1.06),
    "regular": (1.00, 1.00),
    "relaxed": (1.00, 0.98),
    "wide": (1.00, 1.02),
    "a_line": (1.00, 1.00),
    "sheath": (1.05, 1.08),
    "wrap": (1.00, 1.05),
    "pencil": (1.00, 1.05),
    "pleated": (1.05, 1.15),
    "oversized": (1.00, 1.00),
}

#: size -> (relative demand, processing-hours multiplier, fabric multiplier)
SIZES: dict[str, tuple[float, float, float]] = {
    "xs": (0.50, 0.94, 0.90),
    "s": (0.85, 0.97, 0.95),
    "m": (1.20, 1.00, 1.00),
    "l": (1.10, 1.03, 1.06),
    "xl": (0.70, 1.07, 1.12),
}

#: option -> (list-price add-on EUR, processing hours add-on per unit)
OPTIONS: dict[str, tuple[float, float]] = {
    "none": (0.0, 0.0),
    "monogram": (12.0, 0.12),
    "french_cuff": (8.0, 0.08),
    "cuffs": (6.0, 0.06),
    "pleats": (8.0, 0.10),
    "lining_silk": (30.0, 0.20),
    "pockets": (6.0, 0.08),
    "hood": (25.0, 0.30),
}

#: trim material -> (name, unit, EUR per unit, lead time weeks)
TRIMS: dict[str, tuple[str, str, float, int]] = {
    "BTN-SHIRT": ("Shirt buttons", "pcs", 0.08, 2),
    "BTN-HORN": ("Horn buttons", "pcs", 0.60, 3),
    "BTN-STD": ("Trouser buttons", "pcs", 0.15, 2),
    "ZIP-METAL": ("Metal zips", "pcs", 1.20, 2),
    "INTERFACING": ("Fusible interfacing", "m", 3.0, 1),
    "LIN-VISCOSE": ("Viscose lining", "m", 5.0, 3),
    "LIN-SILK": ("Silk lining", "m", 14.0, 4),
    "THR-EMB": ("Embroidery thread", "kg", 40.0, 1),
}


@dataclass(frozen=True)
class LineTemplate:
    line_id: str
    name: str
    speed: float  # hours multiplier (lower = faster)
    wage: float  # EUR per processing hour
    handling: float  # EUR per unit on top of labour
    setup_hours: float
    setup_cost: float
    utilisation: float  # expected processing load / regular capacity


LINES: tuple[LineTemplate, ...] = (
    LineTemplate("L1", "Cut and sew A", 1.00, 32.0, 2.0, 0.50, 60.0, 0.85),
    LineTemplate("L2", "Automated line", 0.80, 40.0, 2.5, 0.75, 110.0, 0.88),
    LineTemplate("L3", "Cut and sew B", 1.10, 28.0, 1.5, 0.40, 45.0, 0.80),
    LineTemplate("L4", "Tailoring atelier", 1.25, 36.0, 3.0, 0.30, 40.0, 0.78),
    LineTemplate("L5", "Flex line", 0.95, 34.0, 2.2, 0.60, 75.0, 0.82),
)

OVERTIME_SHARE = 0.15  # overtime_hours_max = share x capacity_hours
OVERTIME_PREMIUM = 1.5  # overtime_cost_per_hour = premium x wage

#: Family (major) changeover of a line, per family: hours on a line of speed 1.0 (times the line's
#: speed), a crew of CHANGEOVER_CREW paid the line's wage, plus CHANGEOVER_FIXED EUR (cleaning,
#: test pieces) per changeover.
FAMILY_CHANGEOVER_HOURS = {
    "SHR": 3.0, "TRS": 3.0, "JKT": 5.0, "DRS": 4.0,
    "SKT": 3.0, "CT": 6.0, "KNT": 4.0, "BLZ": 5.0,
}  # fmt: skip
CHANGEOVER_CREW = 2.0
CHANGEOVER_FIXED = 120.0
#: A variant (minor) setup costs more for a configuration with an option (monogram, lining, ...).
OPTION_SETUP_UPLIFT = 0.4

#: first and last names of synthetic customers (the only direct identifiers in the data set).
FIRST_NAMES = (
    "Anna", "Ben", "Clara", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas",
    "Karin", "Lukas", "Maria", "Noah", "Olga", "Paul", "Quinn", "Rosa", "Simon", "Tara",
    "Ugo", "Vera", "Wim", "Xenia", "Yusuf", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Adler", "Berger", "Costa", "Dumont", "Eriksen", "Fischer", "Garcia", "Hansen", "Ivanova",
    "Jansen", "Keller", "Lopez", "Meyer", "Novak", "Olsen", "Petit", "Quast", "Rossi",
    "Schmidt", "Torres", "Ulrich", "Vogel", "Weber", "Young", "Zimmer",
)  # fmt: skip
