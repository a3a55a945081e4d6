"""A pretend shop: every second a checkout request with nested spans, a log line
carrying the trace context, and request counters and latencies. Exporters read the
OTEL_* environment variables (endpoint, protocol, service name)."""
import logging
import random
import time

from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

resource = Resource.create()
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(tracer_provider)
metrics.set_meter_provider(
    MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())])
)
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
set_logger_provider(logger_provider)
logging.basicConfig(level=logging.INFO)
logging.getLogger().addHandler(LoggingHandler(logger_provider=logger_provider))

log = logging.getLogger("shop")
tracer = trace.get_tracer("shop")
meter = metrics.get_meter("shop")
requests = meter.create_counter("shop.requests", unit="{request}", description="Checkout requests")
latency = meter.create_histogram("shop.request.duration", unit="s", description="Checkout latency")

while True:
    start = time.time()
    with tracer.start_as_current_span("POST /checkout", kind=trace.SpanKind.SERVER) as span:
        with tracer.start_as_current_span("SELECT cart", kind=trace.SpanKind.CLIENT):
            time.sleep(random.uniform(0.005, 0.03))
        with tracer.start_as_current_span("charge card", kind=trace.SpanKind.CLIENT):
            time.sleep(random.uniform(0.01, 0.08))
        failed = random.random() < 0.05
        if failed:
            span.set_status(trace.Status(trace.StatusCode.ERROR, "card declined"))
            log.error("checkout failed: card declined")
        else:
            log.info("checkout ok, %d items", random.randint(1, 5))
        status = "500" if failed else "200"
    requests.add(1, {"http.response.status_code": status})
    latency.record(time.time() - start, {"http.response.status_code": status})
    time.sleep(1)
