"""eraser_client against a real `eraser serve` (conftest.py starts it)."""

import select

import numpy as np
import pytest

from conftest import eraser_token
from eraser_client import Client, EraserError

ROWS = [0, 5, 9, 17, 123]


def v1_labels(client_url, rows, token=None):
    """The label of each test row through eraser's own /v1 route (JSON,
    the server reads the pixels itself): what the protocol must agree with."""
    import json
    import urllib.request
    labels = []
    for i in rows:
        req = urllib.request.Request(
            client_url + "/v1/infer", data=json.dumps({"test_index": i}).encode(),
            headers={"Content-Type": "application/json",
                     **({"Authorization": "Bearer " + token} if token else {})})
        with urllib.request.urlopen(req) as r:
            labels.append(json.loads(r.read())["label"])
    return labels


def test_health_metadata_configuration_and_statistics(serve):
    s = serve()
    with Client(s.url()) as c:
        assert c.live() and c.ready() and c.model_ready()
        meta = c.server_metadata()
        for e in ("binary_tensor_data", "model_configuration", "statistics"):
            assert e in meta["extensions"]
        model = c.model_metadata()
        assert model["inputs"][0]["shape"] == [-1, 28, 28]
        config = c.model_config()
        assert config["input"][0]["dims"] == [28, 28]
        assert config["max_batch_size"] == 1024
        before = c.model_statistics()
        assert before["inference_stats"]["success"]["count"] == 0
        c.infer(np.zeros((3, 28, 28), dtype=np.uint8))
        after = c.model_statistics()
        assert after["inference_stats"]["success"]["count"] == 1
        assert after["inference_count"] == 3
        # Another model name is not served.
        other = Client(s.url(), model="other")
        for call in (other.model_ready, other.model_metadata):
            with pytest.raises(EraserError) as e:
                call()
            assert e.value.status == 404


@pytest.mark.parametrize("binary", [True, False])
def test_pixels_answer_as_the_server_reads_its_own_test_rows(
        serve, test_images, binary):
    s = serve()
    with Client(s.url()) as c:
        result = c.infer(test_images[ROWS], binary=binary, request_id="r1")
    assert result.id == "r1"
    assert result.labels.dtype == np.int64
    assert list(result.labels) == v1_labels(s.url(), ROWS)
    assert result.decisions == ["clean"] * len(ROWS)
    assert len(result.classes) == len(ROWS) and result.classes[0]
    # No token file: the caller is admin and gets the certificates.
    assert result.margins.dtype == np.int32 and len(result.margins) == len(ROWS)
    assert len(result.certificates) == len(ROWS)


def test_every_dtype_answers_the_same_in_binary_and_json(serve, test_images):
    s = serve()
    pixels = test_images[ROWS].reshape(len(ROWS), 784)
    with Client(s.url()) as c:
        for dtype in (np.float32, np.float64, np.int8, np.int16, np.uint16,
                      np.int32, np.int64):
            # Features the type can hold: pixels/255 for floats, signed
            # small values for the integer types.
            x = (pixels / 255.0).astype(dtype) if np.dtype(dtype).kind == "f" \
                else (pixels.astype(np.int64) % 100 - 50).astype(dtype)
            binary = c.infer(x, binary=True)
            text = c.infer(x, binary=False)
            assert list(binary.labels) == list(text.labels), dtype
            assert binary.decisions == text.decisions, dtype
            assert list(binary.margins) == list(text.margins), dtype
        # float32 pixels/255 are what the server computes from the bytes.
        assert list(c.infer((pixels / 255.0).astype(np.float32)).labels) == \
            v1_labels(s.url(), ROWS)


def test_outputs_named_and_bad_requests(serve, test_images):
    s = serve()
    with Client(s.url()) as c:
        # parameters.timeout, in both forms; a bad one is the server's 400.
        for binary in (True, False):
            assert len(c.infer(test_images[:2], binary=binary,
                               timeout_us=5_000_000).labels) == 2
            with pytest.raises(EraserError) as e:
                c.infer(test_images[:2], binary=binary, timeout_us=-1)
            assert e.value.status == 400 and "timeout" in e.value.message
        only = c.infer(test_images[:2], outputs=["label"])
        assert list(only.outputs) == ["label"]
        assert only.decisions == [] and only.classes is None
        with pytest.raises(EraserError) as e:
            c.infer(np.zeros((1, 783), dtype=np.float32))
        assert e.value.status == 400 and "784" in e.value.message
        with pytest.raises(EraserError) as e:
            c.infer(test_images[:1], outputs=["nothing"])
        assert e.value.status == 400 and "nothing" in e.value.message
        with pytest.raises(ValueError):
            c.infer(np.zeros((1, 784), dtype=np.complex64))
        with pytest.raises(ValueError):
            c.delete()
        # The connection is still good after the refusals.
        assert c.live()


def test_deletions_by_sample_and_owner_are_applied(serve):
    s = serve("--policy", "eraser:lazy,wait,deadline=2s")
    with Client(s.url()) as c:
        d = c.delete(sample=17)
        assert d.seq >= 1 and d.state in ("pending", "applied")
        assert d.info["target"] == "sample:17"
        o = c.delete(owner=3)
        assert o.seq == d.seq + 1 and o.info["target"] == "owner:3"
        applied = c.wait_applied(d, timeout=120)
        assert applied.applied and applied.info["applied_unix_ms"] > 0
        assert c.wait_applied(o.seq, timeout=120).applied
        assert c.deletion(d.seq).applied
        with pytest.raises(EraserError) as e:
            c.delete(sample=10**9)
        assert e.value.status == 404
        with pytest.raises(EraserError) as e:
            c.deletion(999)
        assert e.value.status == 404
        later = c.delete(sample=18)
        assert c.drain() == 0
        assert c.deletion(later).applied


def test_wait_applied_times_out_while_pending(serve):
    s = serve("--policy", "eraser:lazy,wait,deadline=1h")
    with Client(s.url()) as c:
        d = c.delete(sample=21)
        with pytest.raises(TimeoutError):
            c.wait_applied(d, timeout=0.2)
        assert not c.deletion(d).applied


def test_tokens_and_scopes(serve, tmp_path, test_images):
    auth = tmp_path / "tokens"
    infer = eraser_token(auth, "infer")
    admin = eraser_token(auth, "admin")
    s = serve("--auth-file", str(auth))
    x = test_images[:2]
    with pytest.raises(EraserError) as e:
        Client(s.url()).infer(x)
    assert e.value.status == 401
    with Client(s.url(), token=infer) as c:
        r = c.infer(x)
        assert r.margins is None and r.certificates is None
        with pytest.raises(EraserError) as e:
            c.delete(sample=1)
        assert e.value.status == 403
        with pytest.raises(EraserError) as e:
            c.drain()
        assert e.value.status == 403
    with Client(s.url(), token=admin) as c:
        assert c.infer(x).certificates is not None
        d = c.delete(sample=1)
        assert c.drain() == 0
        assert c.deletion(d).applied


def test_a_connection_the_server_closed_while_idle_is_reopened(serve):
    s = serve("--idle-timeout", "200ms", "--policy",
              "eraser:lazy,wait,deadline=1h")
    with Client(s.url()) as c:
        first = c.delete(sample=5)
        # Wait for the server to close the idle connection (its EOF).
        sock = c._conn.sock
        assert select.select([sock], [], [], 30)[0], "the server kept it open"
        assert sock.recv(1) == b""
        second = c.delete(sample=6)
        # Sent once: the next sequence number, nothing logged twice.
        assert second.seq == first.seq + 1
        assert c.deletion(second.seq).info["target"] == "sample:6"
        with pytest.raises(EraserError) as e:
            c.deletion(second.seq + 1)
        assert e.value.status == 404
    # A server that is gone is neither live nor ready.
    s.stop()
    gone = Client(s.url(), timeout=5)
    assert not gone.live() and not gone.ready()
    with pytest.raises(EraserError) as e:
        gone.infer(np.zeros((1, 784), np.uint8))
    assert e.value.status == 0


def test_tls(serve, certificate, test_images):
    cert, key = certificate
    s = serve("--tls-cert", str(cert), "--tls-key", str(key))
    with Client(s.url("https"), ca_file=str(cert)) as c:
        assert c.live()
        assert len(c.infer(test_images[:3]).labels) == 3
    # Not trusted: the certificate is refused, nothing is sent.
    untrusted = Client(s.url("https"))
    assert not untrusted.live()
    with pytest.raises(EraserError) as e:
        untrusted.server_metadata()
    assert e.value.status == 0 and "certificate" in e.value.message.lower()
    with Client(s.url("https"), verify=False) as c:
        assert c.live()
