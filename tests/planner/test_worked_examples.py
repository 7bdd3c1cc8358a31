"""The planner against the worked cost examples AWS publishes, each within 10%.

Read on 2026-11-30 through the stored search corpus (no live web). That corpus holds only the
opening part of each pricing page, so:

- Kinesis Data Streams pricing page: its billing-unit examples and the inputs of the classic
  provisioned example are checked below; its dollar walk-throughs (further down the page) were not
  in the corpus, nor quoted anywhere in it, and are not invented here.
- Firehose pricing page: the ingestion walk-through (100 records/s of 3 KB, $35.84 a month) is
  quoted verbatim from the Japanese copy of the page by a blog, and an older version of it
  (1,000 records/s, $358) by another; both are checked. No format-conversion, VPC or
  dynamic-partitioning walk-through was found in the corpus.
- Other dollar walk-throughs AWS published for the same services are checked too: an AWS
  tutorial's Firehose estimate, two AWS Pricing Calculator breakdowns of provisioned streams, the
  cost table of the AWS Solution "CloudFront Extensions" and an AWS Big Data Blog measurement of an
  on-demand stream with ten enhanced fan-out consumers.

Where an example states unit prices, the test prices the planner with those (so it checks the
arithmetic, not today's prices); otherwise it uses planner/prices and says so.
"""

from __future__ import annotations

import math

import pytest

from planner.costs import CostLine, firehose, kinesis_on_demand, kinesis_provisioned, provisioned_stream_cost
from planner.model import (
    KIB,
    MIB,
    MONTH_HOURS,
    Assumptions,
    Workload,
    firehose_billed_bytes,
    firehose_volumes,
    kinesis_capacity,
    on_demand_billed_bytes,
    put_payload_units,
)
from planner.prices import Price, PriceSheet, Tier, TieredPrice, load_prices

READ_ON = "2026-11-30"  # the day the examples below were read
THIRTY_DAY_MONTH_HOURS = 30 * 24  # the month AWS's walk-throughs use; the planner's is 730 hours


def within_10_percent(actual: float, published: float) -> bool:
    return math.isclose(actual, published, rel_tol=0.10)


def example_prices(source: str, **usd: float) -> PriceSheet:
    """A price sheet holding only the unit prices a published example states.

    Keyword names are price keys with the dots written as double underscores
    (``kinesis__provisioned__shard_hour``); ``firehose_ingestion_first_tier`` is the first
    ingestion tier, the only one the examples reach.
    """
    first_tier = usd.pop("firehose_ingestion_first_tier", None)
    prices = {
        key.replace("__", "."): Price(key.replace("__", "."), value, "as the example states", source)
        for key, value in usd.items()
    }
    tiered = {}
    if first_tier is not None:
        tiered["firehose.ingestion"] = TieredPrice(
            "firehose.ingestion", (Tier(512_000, first_tier),), "USD per GB, first 500 TB", source
        )
    return PriceSheet("example", "USD", READ_ON, prices, tiered)


def total(lines: list[CostLine]) -> float:
    return sum(line.usd_per_month for line in lines)


def test_kinesis_on_demand_rounds_each_record_up_to_1_kb() -> None:
    """https://aws.amazon.com/kinesis/data-streams/pricing/ (On-Demand, Key terms, Data-In):
    "multiplied by the size of each record rounded up to the nearest 1 KB (1,024 bytes). For
    example, if your data records are 4.5 KB each, Kinesis Data Streams will count each record
    as 5 KB of data ingested."
    """
    # Given a 4.5 KB record
    record = 4.5 * KIB
    # When the planner bills it in on-demand mode
    billed = on_demand_billed_bytes(record)
    # Then it counts 5 KB
    assert within_10_percent(billed, 5 * KIB)
    assert billed == 5 * KIB


@pytest.mark.parametrize(("record_kb", "published_units"), [(5, 1), (45, 2), (1000, 40)])
def test_put_payload_units_are_25_kb_chunks(record_kb: int, published_units: int) -> None:
    """http://aws.amazon.com/kinesis/pricing/ (provisioned pricing, PUT Payload Unit): "A PUT
    Payload Unit is counted in 25KB payload 'chunks' that comprise a record. For example, a 5KB
    record contains one PUT Payload Unit, a 45KB record contains two PUT Payload Units, and a 1MB
    record contains 40 PUT Payload Units."
    (1 MB read as 1,000 KB; as 1 MiB the planner counts 41 units, 2.5% above the page's 40.)
    """
    # Given a record of the example's size / When the planner counts its payload units
    units = put_payload_units(record_kb * KIB)
    # Then it matches the page
    assert within_10_percent(units, published_units)


def test_a_1_mib_record_is_within_10_percent_of_the_pages_40_units() -> None:
    """Same page and example as above, for a record of exactly 1 MiB (1,048,576 bytes)."""
    assert within_10_percent(put_payload_units(MIB), 40)


def test_provisioned_example_input_rate_and_shards() -> None:
    """http://aws.amazon.com/kinesis/pricing/ (provisioned example): "Let's assume that our data
    producers put 100 records per second in aggregate, and each record is 35KB. In this case, the
    total data input rate is 3.4MB/sec (100 records/sec*35KB/record)." The same page states "One
    shard provides a capacity of 1MB/sec data input ... One shard can support up to 1000 records
    per second", so 3.4 MB/s needs 4 shards (the page's own shard count is past the part of the
    page the corpus holds).
    """
    # Given the example's producers
    workload = Workload(events_per_second=100, event_bytes=35 * KIB)
    # When the planner sizes the stream
    capacity = kinesis_capacity(workload, Assumptions(enhanced_fan_out=False))
    # Then the input rate is the page's 3.4 MB/s and four shards carry it
    assert within_10_percent(workload.write_bytes_per_second / MIB, 3.4)
    assert capacity.shards == 4
    assert capacity.binding_limit.startswith("write bytes")
    # and each 35 KB record costs two payload units
    assert put_payload_units(35 * KIB) == 2


def test_oldest_provisioned_example_input_rate() -> None:
    """http://aws.amazon.com/kinesis/pricing/ (the first version of the page, PUT transactions):
    "our data producers perform 1000 PUT transactions per second in aggregate, and each
    transaction contains 5KB of data. In this case, the total data input rate is 4.9MB/sec".
    """
    workload = Workload(events_per_second=1000, event_bytes=5 * KIB)
    assert within_10_percent(workload.write_bytes_per_second / MIB, 4.9)
    assert kinesis_capacity(workload, Assumptions(enhanced_fan_out=False)).shards == 5


@pytest.mark.parametrize(("record_kb", "billed_kb"), [(3, 5), (12, 15), (42, 45)])
def test_firehose_rounds_each_record_up_to_5_kb(record_kb: int, billed_kb: int) -> None:
    """https://aws.amazon.com/firehose/pricing/ (Direct PUT and KDS as a source), read in the
    corpus's German and Japanese copies (aws.amazon.com/de/kinesis/data-firehose/pricing/,
    aws.amazon.com/jp/kinesis/data-firehose/pricing/): ingestion is "billed per GB ingested in
    5 KB increments (a 3 KB record is billed as 5 KB, a 12 KB record is billed as 15 KB, etc.)";
    the older text: "rounded up to the nearest 5 KB (5,120 bytes). For example, if your data
    records are 42 KB each, Kinesis Data Firehose will count each record as 45 KB".
    """
    assert within_10_percent(firehose_billed_bytes(record_kb * KIB), billed_kb * KIB)
    assert firehose_billed_bytes(record_kb * KIB) == billed_kb * KIB


def test_firehose_rounds_per_record_not_per_call() -> None:
    """Amazon Data Firehose FAQ / pricing text (quoted in the corpus by several READMEs and the
    Japanese FAQ at https://www.shigemk2.com/entry/2022/01/12/210322): "The 5KB roundup is
    calculated at the record level rather than the API operation level. For example, if your
    PutRecordBatch call contains two 1KB records, the data volume from that call is metered as
    10KB."
    """
    # Given a PutRecordBatch of two 1 KB records / When each is billed
    metered = sum(firehose_billed_bytes(KIB) for _ in range(2))
    # Then the call meters 10 KB
    assert within_10_percent(metered, 10 * KIB)


@pytest.mark.parametrize(
    ("requests_per_second", "shards", "published_usd"),
    [(10, 2, 22), (100, 2, 26), (1000, 10, 146)],
)
def test_clickstream_analytics_on_aws_provisioned_kinesis_cost(
    requests_per_second: int, shards: int, published_usd: float
) -> None:
    """Clickstream Analytics on AWS (AWS Solutions), "Cost", Ingestion module table, us-east-1,
    request payload 1 KB: Kinesis (Provisioned 2 shard) $22 at 10 RPS and $26 at 100 RPS;
    Kinesis (Provisioned 10 shard) $146 at 1000 RPS.
    https://docs.aws.amazon.com/solutions/latest/clickstream-analytics-on-aws/cost.html, and the
    revision read: github.com/awslabs/clickstream-analytics-on-aws docs/en/plan-deployment/cost.md
    at commit 07e881d86fe881d7afdb578038c6e8331bbb8d65.
    """
    # Given the table's shard count and request rate, one 1 KB record per request
    prices = load_prices("us-east-1")
    # When the planner prices the stream (shard-hours and PUT payload units)
    lines = provisioned_stream_cost(shards, requests_per_second, KIB, prices)
    # Then the month costs what the table says
    assert within_10_percent(sum(line.usd_per_month for line in lines), published_usd)


# ---------------------------------------------------------------------------------------------
# Dollar walk-throughs
# ---------------------------------------------------------------------------------------------

FIREHOSE_INGESTION_EXAMPLES = [
    pytest.param(100, 3 * KIB, 0.029, 1_235.96, 35.84, id="firehose-pricing-page-100-records"),
    pytest.param(1_000, 3 * KIB, 0.029, 12_359.62, 358.0, id="firehose-pricing-page-older-1000-records"),
    pytest.param(500, 2 * KIB, 0.035, 6_179.81, 216.29, id="aws-log-analytics-tutorial-500-records"),
]


@pytest.mark.parametrize(
    ("records_per_second", "record_bytes", "usd_per_gb", "published_gb", "published_usd"),
    FIREHOSE_INGESTION_EXAMPLES,
)
def test_firehose_ingestion_walk_throughs(
    records_per_second: int, record_bytes: int, usd_per_gb: float, published_gb: float, published_usd: float
) -> None:
    """Three published Firehose ingestion walk-throughs, all read on 2026-11-30.

    1. Firehose pricing page, "Direct PUT and KDS as a source" ingestion example, in the Japanese
       copy https://aws.amazon.com/jp/kinesis/data-firehose/pricing/?nc=sn&loc=3 as quoted verbatim
       by https://blog.nikuniku.me/entry/2022/01/03/173413: record size 3 KB rounded up to 5 KB;
       first 500 TB/month $0.029 per GB; GB billed = (100 records/s x 5 KB) / 1,048,576 KB/GB x
       30 days x 86,400 s = 1,235.96 GB; monthly ingestion charge = 1,235.96 GB x $0.029 =
       **$35.84**.
    2. An older version of the same example ("Let's use Amazon's example: 1,000 records of
       streaming data per second for a month, each record 3KB"), worked in
       https://christofer.lof.io/2018/03/17/aws-kinesis-and-azure-eventhubs.html: 12,359.62
       GB/month x $0.029 ("the price in US-East ... for the first 500 TB/month") = **$358**.
    3. AWS's Kinesis Analytics log-analytics tutorial, "Estimate Your Costs" (copy read in
       github.com/kmskambo/Data-Analytics-using-AWS README.md): 500 records/s, each under 5 KB so
       billed as 5 KB; $0.035 per GB in US East; 6,179.81 GB/month; monthly charge **$216.29**.
       (Any record size up to 5 KB bills the same; 2 KB is used here.)

    The examples' own per-GB prices are used ($0.035 is an older price than $0.029). They count
    a 30-day month; the planner counts 730 hours, 1.4% more, which is inside the 10%.
    """
    # Given the example's records and its price
    workload = Workload(events_per_second=records_per_second, event_bytes=record_bytes)
    prices = example_prices("Firehose ingestion walk-through", firehose_ingestion_first_tier=usd_per_gb)
    no_options = Assumptions(firehose_format_conversion=False, firehose_dynamic_partitioning=False)
    # When the planner prices the Firehose stream
    lines = firehose(workload, no_options, prices)
    # Then the month costs what the walk-through says, within 10%
    assert [line.component for line in lines] == ["Firehose ingestion"]
    assert within_10_percent(total(lines), published_usd)
    # and over the walk-through's own 30-day month the billed volume is the page's, to the hundredth
    billed_gib = firehose_volumes(workload)["billed_gib"]
    assert billed_gib * THIRTY_DAY_MONTH_HOURS / MONTH_HOURS == pytest.approx(published_gb, abs=0.01)


AWS_CALCULATOR_PROVISIONED = [
    pytest.param(1_000 / 60, 3 * KIB, 3, 1, 11.56, id="archcolider-1000-records-per-minute-3kb-3-consumers"),
    pytest.param(10_000, KIB // 2, 4, 10, 477.42, id="taxi-analytics-10000-records-0.5kb-4-consumers"),
]


@pytest.mark.parametrize(
    ("records_per_second", "record_bytes", "consumers", "published_shards", "published_usd"),
    AWS_CALCULATOR_PROVISIONED,
)
def test_aws_pricing_calculator_provisioned_streams(
    records_per_second: float, record_bytes: int, consumers: int, published_shards: int, published_usd: float
) -> None:
    """Two AWS Pricing Calculator breakdowns of a provisioned stream, pasted into public design
    documents (read on 2026-11-30). The calculator sizes the stream as
    max(ingress MB/s / 1, ingress x consumers / 2, records/s / 1000), the planner's rule for
    consumers on shared throughput, and bills 730 h x $0.015 per shard-hour plus 2,628,000 s x
    records/s x PUT payload units x $0.000000014.

    1. github.com/ldynia/archcolider 3.ViewsAndPerspectives/CostAnalysis.md (a later revision of
       the file): "1000 per minute / 60 = 16.67 per second", 3 KB records, 3 consumer
       applications -> 1 shard; 730 shard-hours = 10.95 USD; 43,808,760 PUT payload units =
       0.61 USD; "Kinesis data stream cost (monthly): **11.56 USD**".
    2. github.com/yffrankwang/amazon-taxi-analytics README.md: 10,000 records/s of 0.50 KB, 4
       consumer applications -> 10 shards (records bind); 109.50 USD + 26,280,000,000 PUT payload
       units = 367.92 USD; "Kinesis data stream cost (monthly): **477.42 USD**".

    The calculator's unit prices ($0.015, $0.000000014) are used; they equal us-east-1's today.
    """
    # Given the example's producers and consumers, reading with shared throughput
    workload = Workload(events_per_second=records_per_second, event_bytes=record_bytes, consumers=consumers)
    prices = example_prices(
        "AWS Pricing Calculator",
        kinesis__provisioned__shard_hour=0.015,
        kinesis__provisioned__put_payload_units_per_million=0.000000014 * 1e6,
    )
    # When the planner sizes and prices the stream
    capacity = kinesis_capacity(workload, Assumptions(enhanced_fan_out=False))
    lines = kinesis_provisioned(workload, capacity, prices)
    # Then it provisions the calculator's shards and the month costs what the calculator says
    assert capacity.shards == published_shards
    assert within_10_percent(total(lines), published_usd)
    assert total(lines) == pytest.approx(published_usd, abs=0.01)


def test_cloudfront_extensions_solution_kinesis_line() -> None:
    """AWS Solution "CloudFront Extensions", cost page, "Real time monitoring with CloudFront
    real-time logs", "As of August 2022 ... US East (N. Virginia)": Amazon Kinesis Data Stream,
    "1 shard, 60 records(2KB)/second, 168 hours data retention", **$27.76** a month. Read on
    2026-11-30 in github.com/awslabs/aws-cloudfront-extensions docs/en/cost.md.

    The table states no unit prices, so planner/prices/us-east-1.json prices it: 730 shard-hours
    ($10.95), 157.68 million PUT payload units ($2.21) and 730 shard-hours of retention beyond
    24 hours ($14.60) make $27.76; this also checks the extended-retention price, the one Kinesis
    price in that file that only secondary sources gave.
    """
    # Given the solution's stream: one consumer (its Firehose delivery stream), seven days kept
    workload = Workload(events_per_second=60, event_bytes=2 * KIB, retention_hours=168)
    # When the planner sizes and prices it
    capacity = kinesis_capacity(workload, Assumptions(enhanced_fan_out=False))
    lines = kinesis_provisioned(workload, capacity, load_prices("us-east-1"))
    # Then one shard costs what the table says
    assert capacity.shards == 1
    assert [line.component for line in lines] == [
        "Kinesis shard-hours",
        "Kinesis PUT payload units",
        "Kinesis extended retention",
    ]
    assert within_10_percent(total(lines), 27.76)


def test_cloudfront_extensions_solution_firehose_line_differs_only_by_dynamic_partitioning_rounding() -> None:
    """Same table: Amazon Kinesis Data Firehose, "60 records(2KB)/second, Dynamic Partitioning
    enabled", **$36.9** a month (us-east-1, August 2022, no unit prices stated).

    The planner gives about $27.9: ingestion of 752 GiB billed in 5 KB increments ($21.80) plus
    dynamic partitioning on the 301 GiB actually delivered ($6.02) and its S3 objects. The
    table's figure is reached only by charging dynamic partitioning on the 5 KB-rounded 752 GiB
    as well (+$9.02). The pricing page rounds ingestion and format conversion to 5 KB increments
    but charges dynamic partitioning "per GB delivered to S3" (German copy in the corpus: "pro an
    S3 geliefertes GB"), so the planner keeps charging delivered bytes. This test pins that one
    difference: with it added back, the planner is within 10% of the table.
    """
    # Given the solution's Firehose stream (no Parquet conversion), priced from us-east-1
    workload = Workload(events_per_second=60, event_bytes=2 * KIB)
    prices = load_prices("us-east-1")
    # When the planner prices it
    planner_usd = total(firehose(workload, Assumptions(firehose_format_conversion=False), prices))
    volumes = firehose_volumes(workload)
    rounding_gib = volumes["billed_gib"] - volumes["actual_gib"]
    partitioning_on_rounding = rounding_gib * prices["firehose.dynamic_partitioning_gb"]
    # Then the planner is below the table by the partitioning charge on the rounding, and no more
    assert planner_usd < 36.9
    assert within_10_percent(planner_usd + partitioning_on_rounding, 36.9)


def test_on_demand_stream_with_ten_enhanced_fan_out_consumers_aws_blog() -> None:
    """AWS Big Data Blog, "Kinesis On-demand Advantage saves 60%+ on streaming costs" (2026-03-09,
    https://aws.amazon.com/blogs/big-data/kinesis-on-demand-advantage-saves-60-on-streaming-costs/;
    read on 2026-11-30 in the copy github.com/api-evangelist/kinesis
    blogs/2026-03-09-kinesis-on-demand-advantage-saves-60-on-streaming-costs.md), scenario 3, all
    prices us-east-1: one on-demand stream, 24-hour retention, 10 enhanced fan-out (EFO) Lambda
    consumers, "a consistent ingest rate of 25 MiBps" for 24 hours; "The On-demand Standard cost
    was **$1,266**". Prices the post states for On-demand Standard: $0.04 per stream-hour, $0.08
    per GB ingested, $0.05 per GB of EFO retrieval.

    The post states no record size; 1 KiB records are used, which the 1 KB rounding leaves
    unchanged (any whole number of KiB gives the same figure). The planner prices a 730-hour
    month, scaled here to the post's 24 hours; it comes out 3% below the measured bill.
    """
    # Given 25 MiB/s of 1 KiB records read by ten EFO consumers
    workload = Workload(events_per_second=25 * MIB / KIB, event_bytes=KIB, consumers=10)
    prices = example_prices(
        "AWS Big Data Blog, 2026-03-09",
        kinesis__on_demand__stream_hour=0.04,
        kinesis__on_demand__data_in_gb=0.08,
        kinesis__on_demand__efo_data_gb=0.05,
    )
    # When the planner prices the stream on demand
    capacity = kinesis_capacity(workload, Assumptions(enhanced_fan_out=True))
    lines = kinesis_on_demand(workload, capacity, prices)
    one_day = total(lines) * 24 / MONTH_HOURS
    # Then a day costs what the post measured, within 10%
    assert [line.component for line in lines] == [
        "Kinesis stream-hours",
        "Kinesis data in",
        "Kinesis data out (enhanced fan-out)",
    ]
    assert within_10_percent(one_day, 1_266)
