"""An OTLP/HTTP metrics receiver on a free loopback port, as an OpenTelemetry Collector's otlphttp
receiver takes metrics: each POST's body is decoded as an ExportMetricsServiceRequest with the
official opentelemetry-proto package and appended, as JSON (protobuf's MessageToDict, field
names as in the .proto), one line per request, to the file named on the command line with the
request's path and Content-Type. Answers an empty ExportMetricsServiceResponse. Prints its port,
then serves until killed."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

OUT = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        record = {
            "path": self.path,
            "content_type": self.headers.get("Content-Type"),
            "request": MessageToDict(request, preserving_proto_field_name=True),
        }
        with open(OUT, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        reply = ExportMetricsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
