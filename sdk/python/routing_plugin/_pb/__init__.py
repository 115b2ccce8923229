"""Generated protobuf message code (scripts/pyproto, run by `make proto`).

plugin_pb2 is the routing plugin protocol (sdk/internal/pluginpb/plugin.proto);
grpc_broker_pb2, grpc_controller_pb2 and grpc_stdio_pb2 are go-plugin's.
"""
