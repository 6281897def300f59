"""The gRPC front end with a client the project did not write: Debian's
grpcio, with stubs generated now from serve/proto (conftest.grpc_stubs),
against real `eraser serve --grpc-listen` processes."""

import struct

import grpc
import numpy as np
import pytest

from conftest import eraser_token
from eraser_client import Client

ROWS = [0, 5, 9, 17, 123]

# numpy dtype -> (datatype, the InferTensorContents field that carries it)
TYPED = {
    np.uint8: ("UINT8", "uint_contents"),
    np.uint16: ("UINT16", "uint_contents"),
    np.int8: ("INT8", "int_contents"),
    np.int16: ("INT16", "int_contents"),
    np.int32: ("INT32", "int_contents"),
    np.int64: ("INT64", "int64_contents"),
    np.float32: ("FP32", "fp32_contents"),
    np.float64: ("FP64", "fp64_contents"),
}


def infer_request(g, x, raw=True, outputs=(), model="eraser"):
    datatype, field = TYPED[x.dtype.type]
    req = g.pb.ModelInferRequest(model_name=model, id="call-1")
    t = req.inputs.add(name="input", datatype=datatype, shape=list(x.shape))
    if raw:
        req.raw_input_contents.append(
            np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("<")).tobytes())
    else:
        getattr(t.contents, field).extend(x.reshape(-1).tolist())
    for name in outputs:
        req.outputs.add(name=name)
    return req


def bytes_elements(raw):
    out, at = [], 0
    while at < len(raw):
        (n,) = struct.unpack_from("<I", raw, at)
        out.append(raw[at + 4:at + 4 + n].decode())
        at += 4 + n
    return out


def outputs(response):
    """{name: values} from raw_output_contents, in output order."""
    decoded = {}
    for o, raw in zip(response.outputs, response.raw_output_contents):
        if o.datatype == "BYTES":
            decoded[o.name] = bytes_elements(raw)
        else:
            dtype = {"INT64": "<i8", "INT32": "<i4"}[o.datatype]
            decoded[o.name] = list(np.frombuffer(raw, dtype=dtype))
        assert list(o.shape) == [len(decoded[o.name])]
    return decoded


def code_of(call):
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code(), e.value.details()


def test_health_metadata_configuration_and_statistics(serve, grpc_stubs):
    g = grpc_stubs
    s = serve("--grpc-listen", "127.0.0.1:0")
    with grpc.insecure_channel(s.grpc_target()) as channel:
        stub = g.pbg.GRPCInferenceServiceStub(channel)
        assert stub.ServerLive(g.pb.ServerLiveRequest()).live
        assert stub.ServerReady(g.pb.ServerReadyRequest()).ready
        assert stub.ModelReady(g.pb.ModelReadyRequest(name="eraser")).ready
        meta = stub.ServerMetadata(g.pb.ServerMetadataRequest())
        assert set(meta.extensions) >= {"binary_tensor_data",
                                        "model_configuration", "statistics"}
        model = stub.ModelMetadata(g.pb.ModelMetadataRequest(name="eraser"))
        assert list(model.inputs[0].shape) == [-1, 28, 28]
        assert model.inputs[0].datatype == "UINT8"
        assert [o.name for o in model.outputs] == ["label", "decision",
                                                   "class", "margin"]
        # The configuration is the HTTP route's document, as the message.
        config = stub.ModelConfig(
            g.pb.ModelConfigRequest(name="eraser", version="1")).config
        with Client(s.url()) as http:
            http_config = http.model_config()
        assert config.max_batch_size == http_config["max_batch_size"] == 1024
        assert list(config.input[0].dims) == [28, 28]
        assert config.input[0].data_type == g.pb.TYPE_UINT8
        assert config.output[0].data_type == g.pb.TYPE_INT64
        assert config.dynamic_batching.max_queue_delay_microseconds == \
            http_config["dynamic_batching"]["max_queue_delay_microseconds"]
        assert config.parameters["shards"].string_value == "4"
        # Statistics count both front ends' requests.
        stub.ModelInfer(infer_request(g, np.zeros((3, 784), np.uint8)))
        with Client(s.url()) as http:
            http.infer(np.zeros((2, 784), np.uint8))
        stats = stub.ModelStatistics(
            g.pb.ModelStatisticsRequest(name="eraser")).model_stats[0]
        assert stats.inference_stats.success.count == 2
        assert stats.inference_count == 5
        assert stats.execution_count >= 1
        every = stub.ModelStatistics(g.pb.ModelStatisticsRequest())
        assert len(every.model_stats) == 1
        for call in (
                lambda: stub.ModelMetadata(
                    g.pb.ModelMetadataRequest(name="other")),
                lambda: stub.ModelConfig(
                    g.pb.ModelConfigRequest(name="eraser", version="2")),
                lambda: stub.ModelReady(g.pb.ModelReadyRequest(name="x"))):
            assert code_of(call)[0] == grpc.StatusCode.NOT_FOUND


def test_raw_and_typed_inputs_answer_as_the_server_reads_its_test_rows(
        serve, grpc_stubs, test_images):
    g = grpc_stubs
    s = serve("--grpc-listen", "127.0.0.1:0")
    with Client(s.url()) as http:
        expected = list(http.infer(test_images[ROWS]).labels)
    pixels = test_images[ROWS].reshape(len(ROWS), 784)
    with grpc.insecure_channel(s.grpc_target()) as channel:
        stub = g.pbg.GRPCInferenceServiceStub(channel)
        for raw in (True, False):
            r = stub.ModelInfer(infer_request(g, pixels, raw=raw))
            assert r.model_name == "eraser" and r.id == "call-1"
            out = outputs(r)
            assert out["label"] == expected, raw
            assert out["decision"] == ["clean"] * len(ROWS)
            assert len(out["class"]) == len(ROWS) and out["class"][0]
            assert "certificates" in r.parameters  # no token file: admin
        # Every other datatype answers alike raw and typed.
        for dtype in TYPED:
            x = (pixels / 255.0).astype(dtype) if np.dtype(dtype).kind == "f" \
                else (pixels % 100).astype(dtype)
            raw = outputs(stub.ModelInfer(infer_request(g, x, raw=True)))
            typed = outputs(stub.ModelInfer(infer_request(g, x, raw=False)))
            assert raw == typed, dtype
        f32 = (pixels / 255.0).astype(np.float32)
        assert outputs(stub.ModelInfer(infer_request(g, f32)))["label"] == \
            expected
        only = stub.ModelInfer(infer_request(g, pixels, outputs=["label"]))
        assert [o.name for o in only.outputs] == ["label"]


def test_bad_requests_are_invalid_argument(serve, grpc_stubs):
    g = grpc_stubs
    s = serve("--grpc-listen", "127.0.0.1:0")
    x = np.zeros((2, 784), np.uint8)
    with grpc.insecure_channel(s.grpc_target()) as channel:
        stub = g.pbg.GRPCInferenceServiceStub(channel)
        short = infer_request(g, x)
        short.raw_input_contents[0] = short.raw_input_contents[0][:-1]
        wrong_shape = infer_request(g, np.zeros((2, 783), np.uint8))
        unknown_output = infer_request(g, x, outputs=["nothing"])
        renamed = infer_request(g, x)
        renamed.inputs[0].name = "pixels"
        both = infer_request(g, x)
        both.inputs[0].contents.uint_contents.extend([0] * 1568)
        overflow = infer_request(g, x)
        del overflow.inputs[0].shape[:]
        overflow.inputs[0].shape.extend([2, 1 << 23, 1 << 23])
        for name, req, says in (
                ("short raw", short, "bytes"),
                ("wrong shape", wrong_shape, "784"),
                ("unknown output", unknown_output, "nothing"),
                ("renamed input", renamed, "pixels"),
                ("raw and typed", both, "both"),
                ("overflowing shape", overflow, "2^40")):
            code, details = code_of(lambda: stub.ModelInfer(req))
            assert code == grpc.StatusCode.INVALID_ARGUMENT, name
            assert says in details, (name, details)
        code, _ = code_of(lambda: stub.ModelInfer(
            infer_request(g, x, model="other")))
        assert code == grpc.StatusCode.NOT_FOUND
        # Six failures of this model; another model's request is not one.
        stats = stub.ModelStatistics(
            g.pb.ModelStatisticsRequest(name="eraser")).model_stats[0]
        assert stats.inference_stats.fail.count == 6
        assert stats.inference_stats.success.count == 0
        # The channel is still good.
        assert stub.ModelInfer(infer_request(g, x)).outputs


def test_deletions(serve, grpc_stubs):
    g = grpc_stubs
    s = serve("--grpc-listen", "127.0.0.1:0", "--policy",
              "eraser:lazy,wait,deadline=1h")
    with grpc.insecure_channel(s.grpc_target()) as channel:
        d = g.dpbg.DeletionsStub(channel)
        first = d.Delete(g.dpb.DeleteRequest(sample=17))
        assert first.seq >= 1 and first.state == g.dpb.Deletion.PENDING
        assert first.target == "sample:17" and first.samples == 1
        owner = d.Delete(g.dpb.DeleteRequest(owner=3))
        assert owner.seq == first.seq + 1 and owner.target == "owner:3"
        # Durable and visible over HTTP too.
        with Client(s.url()) as http:
            assert http.deletion(owner.seq).state == "pending"
        assert d.Drain(g.dpb.DrainRequest()).pending_deletions == 0
        applied = d.GetDeletion(g.dpb.GetDeletionRequest(seq=first.seq))
        assert applied.state == g.dpb.Deletion.APPLIED
        assert applied.applied_unix_ms >= applied.arrival_unix_ms > 0
        assert len(applied.excluded_from) == len(applied.shards) >= 1
        for call in (
                lambda: d.Delete(g.dpb.DeleteRequest(sample=10**9)),
                lambda: d.GetDeletion(g.dpb.GetDeletionRequest(seq=999))):
            assert code_of(call)[0] == grpc.StatusCode.NOT_FOUND
        assert code_of(lambda: d.Delete(g.dpb.DeleteRequest()))[0] == \
            grpc.StatusCode.INVALID_ARGUMENT


def test_tokens_and_scopes(serve, grpc_stubs, tmp_path):
    g = grpc_stubs
    auth = tmp_path / "tokens"
    infer = eraser_token(auth, "infer")
    owner7 = eraser_token(auth, "delete:owner:7")
    admin = eraser_token(auth, "admin")
    s = serve("--grpc-listen", "127.0.0.1:0", "--auth-file", str(auth),
              "--policy", "eraser:lazy,wait,deadline=1h")

    def bearer(token):
        return [("authorization", "Bearer " + token)]

    x = np.zeros((1, 784), np.uint8)
    with grpc.insecure_channel(s.grpc_target()) as channel:
        stub = g.pbg.GRPCInferenceServiceStub(channel)
        d = g.dpbg.DeletionsStub(channel)
        # Health needs no token; everything else does.
        assert stub.ServerLive(g.pb.ServerLiveRequest()).live
        for call in (
                lambda: stub.ModelInfer(infer_request(g, x)),
                lambda: stub.ModelInfer(infer_request(g, x),
                                        metadata=bearer("not-a-token")),
                lambda: stub.ServerMetadata(g.pb.ServerMetadataRequest()),
                lambda: d.Delete(g.dpb.DeleteRequest(sample=1))):
            assert code_of(call)[0] == grpc.StatusCode.UNAUTHENTICATED
        # The scheme is case-insensitive, as over HTTP.
        r = stub.ModelInfer(infer_request(g, x),
                            metadata=[("authorization", "bearer " + infer)])
        assert "certificates" not in r.parameters
        assert [o.name for o in r.outputs] == ["label", "decision", "class"]
        code, details = code_of(lambda: stub.ModelInfer(
            infer_request(g, x, outputs=["margin"]), metadata=bearer(infer)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "admin" in details
        for token, call in (
                (infer, lambda m: d.Delete(g.dpb.DeleteRequest(sample=1),
                                           metadata=m)),
                (owner7, lambda m: d.Delete(g.dpb.DeleteRequest(owner=8),
                                            metadata=m)),
                (owner7, lambda m: stub.ModelInfer(infer_request(g, x),
                                                   metadata=m)),
                (owner7, lambda m: d.Drain(g.dpb.DrainRequest(), metadata=m))):
            assert code_of(lambda: call(bearer(token)))[0] == \
                grpc.StatusCode.PERMISSION_DENIED
        mine = d.Delete(g.dpb.DeleteRequest(owner=7), metadata=bearer(owner7))
        other = d.Delete(g.dpb.DeleteRequest(owner=9), metadata=bearer(admin))
        assert d.GetDeletion(g.dpb.GetDeletionRequest(seq=mine.seq),
                             metadata=bearer(owner7)).target == "owner:7"
        # Another's deletion reads as absent.
        assert code_of(lambda: d.GetDeletion(
            g.dpb.GetDeletionRequest(seq=other.seq),
            metadata=bearer(owner7)))[0] == grpc.StatusCode.NOT_FOUND
        assert "certificates" in stub.ModelInfer(
            infer_request(g, x), metadata=bearer(admin)).parameters
        assert d.Drain(g.dpb.DrainRequest(),
                       metadata=bearer(admin)).pending_deletions == 0


def test_tls(serve, grpc_stubs, certificate):
    g = grpc_stubs
    cert, key = certificate
    s = serve("--grpc-listen", "127.0.0.1:0", "--tls-cert", str(cert),
              "--tls-key", str(key))
    trusted = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    with grpc.secure_channel(s.grpc_target(), trusted) as channel:
        stub = g.pbg.GRPCInferenceServiceStub(channel)
        r = stub.ModelInfer(infer_request(g, np.zeros((2, 784), np.uint8)))
        assert len(outputs(r)["label"]) == 2
    # A client that does not trust the certificate gets nothing.
    with grpc.secure_channel(s.grpc_target(),
                             grpc.ssl_channel_credentials()) as channel:
        stub = g.pbg.GRPCInferenceServiceStub(channel)
        code, _ = code_of(lambda: stub.ServerLive(g.pb.ServerLiveRequest(),
                                                  timeout=10))
        assert code == grpc.StatusCode.UNAVAILABLE
    # Nor does plaintext.
    with grpc.insecure_channel(s.grpc_target()) as channel:
        stub = g.pbg.GRPCInferenceServiceStub(channel)
        code, _ = code_of(lambda: stub.ServerLive(g.pb.ServerLiveRequest(),
                                                  timeout=10))
        assert code == grpc.StatusCode.UNAVAILABLE


def test_a_message_over_the_body_limit_is_refused(serve, grpc_stubs):
    g = grpc_stubs
    s = serve("--grpc-listen", "127.0.0.1:0", "--body-limit", "100000")
    with grpc.insecure_channel(s.grpc_target()) as channel:
        stub = g.pbg.GRPCInferenceServiceStub(channel)
        big = infer_request(g, np.zeros((200, 784), np.uint8))  # 156,800 bytes
        assert code_of(lambda: stub.ModelInfer(big))[0] == \
            grpc.StatusCode.RESOURCE_EXHAUSTED
        assert stub.ModelInfer(infer_request(g, np.zeros((100, 784),
                                                         np.uint8))).outputs
