"""The playground's WebSocket protocol, in process (Starlette's TestClient): every command,
bad messages, divergence, and the classic step's numbers equal to `deltaprop explain`'s."""

import base64
import json
import logging
import warnings

import numpy as np
import pytest

pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx (the [test] extra)")
with warnings.catch_warnings():
    # Newer Starlette prefers httpx2 for its TestClient; httpx works the same.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402
    from starlette.websockets import WebSocketDisconnect  # noqa: E402

import deltaprop as dp  # noqa: E402
from deltaprop.cli import main  # noqa: E402
from deltaprop.explain import classic_example  # noqa: E402
from deltaprop.playground.server import create_app  # noqa: E402


@pytest.fixture
def client():
    with TestClient(create_app()) as test_client:
        yield test_client


def until(ws, kind, test=lambda m: True, limit=2000):
    """Messages up to the first of ``kind`` that passes ``test``; returns (it, the others)."""
    seen = []
    for _ in range(limit):
        message = ws.receive_json()
        if message["type"] == kind and test(message):
            return message, seen
        seen.append(message)
    raise AssertionError(f"no {kind} message in {limit}: {[m['type'] for m in seen][-10:]}")


def send(ws, kind, **fields):
    ws.send_text(json.dumps({"type": kind, **fields}))


def test_the_page_and_its_files_are_served_from_the_package(client):
    page = client.get("/")
    assert (
        page.status_code == 200 and '<script type="module" src="/static/js/main.js">' in page.text
    )
    for path in ("/static/js/main.js", "/static/js/network.js", "/static/playground.css"):
        assert client.get(path).status_code == 200, path
    # Nothing is fetched from elsewhere: every src and href is local.
    for attr in ("src=", "href="):
        for piece in page.text.split(attr)[1:]:
            assert piece[1] in "/d#", piece[:40]  # "/static/...", "data:", "#"
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400


def test_state_then_settings_then_reset_replays_the_same_weights(client):
    with client.websocket_connect("/ws") as ws:
        state = ws.receive_json()
        assert state["type"] == "state" and state["network"]["sizes"] == [2, 4, 2, 2]
        send(ws, "settings", settings={"dataset": "spiral", "shape": "2-8-8-2", "lr": "0.03"})
        state, _ = until(ws, "state")
        assert state["hash"]["shape"] == "2-8-8-2" and state["data"]["name"] == "spiral"
        first = state["frame"]["weights"]
        send(ws, "step")
        step, _ = until(ws, "step")
        assert len(step["rows"]) == 10 and not step["example"]
        frame, _ = until(ws, "frame")
        assert frame["batch"] == 1 and frame["delta_source"] == "step"
        assert frame["weights"] != first
        send(ws, "reset")
        state, _ = until(ws, "state")
        assert state["frame"]["weights"] == first and state["frame"]["epoch"] == 0


def test_play_advances_the_epoch_at_most_30_frames_a_second_and_pause_holds(client):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        send(ws, "settings", settings={"dataset": "xor", "speed": 10})
        until(ws, "state")
        send(ws, "play")
        frames = [until(ws, "frame", lambda m: m["running"])[0] for _ in range(6)]
        epochs = [f["epoch"] for f in frames]
        assert epochs == sorted(epochs) and epochs[-1] > epochs[0]
        assert all(b - a <= 10 for a, b in zip(epochs, epochs[1:]))  # speed: 10 epochs a frame
        assert sum(len(f["curve"]) for f in frames) >= 5
        send(ws, "pause")
        paused, _ = until(ws, "frame", lambda m: not m["running"])
        send(ws, "step")  # answered only after anything Play had in flight
        until(ws, "step")
        held, _ = until(ws, "frame")
        assert held["epoch"] == paused["epoch"] and held["steps"] == paused["steps"] + 1


def test_the_classic_step_shows_what_deltaprop_explain_prints(client, capsys):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        send(ws, "settings", settings={"example": "classic"})
        state, _ = until(ws, "state")
        assert state["hash"] == {"example": "classic"}
        assert state["network"]["units"] == [["x1", "x2"], ["h1", "h2"], ["o1", "o2"]]
        send(ws, "step")
        step, _ = until(ws, "step")
        send(ws, "export_markdown")
        markdown, _ = until(ws, "markdown")
    net, x, t, lr = classic_example()
    trace = dp.explain(net, x, t, dp.SGD(lr=lr))
    for layer, mine in zip(trace.layers, step["layers"]):
        assert mine["delta"] == layer.delta.tolist()
        assert mine["W_change"] == layer.W_change.tolist()
        assert mine["W_grad"] == layer.W_grad.tolist()
        assert mine["a"] == layer.a.tolist() and mine["z"] == layer.z.tolist()
    assert step["layers"][1]["delta"][0] == pytest.approx(-0.138498562, abs=1e-9)
    # The page's step is applied to its network, as Step must; explain says so in one line.
    applied = dp.explain(net, x, t, dp.SGD(lr=lr), apply=True)
    assert markdown["text"] == applied.render("markdown")
    assert main(["explain"]) == 0
    printed = [line.strip() for line in capsys.readouterr().out.splitlines()]
    shown = step["formulas"]
    for group in (*shown["units"].values(), *shown["weights"].values()):
        for block in group:
            for line in block["lines"]:
                # `deltaprop explain` breaks long lines at " = "; the page keeps them whole.
                assert (
                    line in printed
                    or line.split(" = ")[0] in printed[0]
                    or any(p.startswith(line.split(" = ")[0] + " ") for p in printed)
                ), line
    assert (
        "δ_o1 = o1(1 − o1)(t1 − o1) = 0.7514 × (1 − 0.7514) × (0.01 − 0.7514) = −0.1385" in printed
    )
    assert shown["units"]["o1"][1]["lines"] == [
        "δ_o1 = o1(1 − o1)(t1 − o1) = 0.7514 × (1 − 0.7514) × (0.01 − 0.7514) = −0.1385"
    ]


def test_bad_messages_get_an_error_frame_and_the_connection_goes_on(client, caplog):
    caplog.set_level(logging.WARNING, logger="deltaprop.playground")
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        for text, kind, words in [
            ("not json", "bad_message", "not JSON"),
            ("[1, 2]", "bad_message", 'an object with a "type"'),
            ('{"type": "fly"}', "bad_message", "unknown message type 'fly'"),
            ('{"type": "settings", "settings": 3}', "bad_message", '"settings" must be an object'),
            (
                '{"type": "settings", "settings": {"shape": "2-100-2"}}',
                "bad_input",
                "1 to 64 units",
            ),
            (
                '{"type": "settings", "settings": {"shape": "1,1,1,1,1,1,1,1,1"}}',
                "bad_input",
                "at most 8",
            ),
            ('{"type": "settings", "settings": {"lr": -1}}', "bad_input", "lr: expected a number"),
            ('{"type": "upload_csv", "name": "x.csv", "data": "@@@"}', "bad_message", "base64"),
            ('{"type": "load_model", "data": "bm90IGEgbW9kZWw="}', "bad_input", "not a"),
            ('{"type": "export_markdown"}', "bad_input", "press Step with batch size 1"),
        ]:
            ws.send_text(text)
            error, _ = until(ws, "error")
            assert error["kind"] == kind and words in error["message"], (text, error)
        send(ws, "step")  # still serving, with the settings it had
        step, _ = until(ws, "step")
        assert len(step["layers"]) == 3
    assert len([r for r in caplog.records if r.name == "deltaprop.playground"]) >= 10
    assert all("\n" not in r.getMessage() for r in caplog.records)


def test_divergence_keeps_finite_weights_and_the_page_can_reset(client):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        settings = {"dataset": "xor", "activation": "identity", "output": "identity", "lr": 100}
        send(ws, "settings", settings=settings)
        until(ws, "state")
        send(ws, "play")
        error, _ = until(ws, "error")
        assert error["kind"] == "diverged" and "smaller learning rate (lr=100)" in error["message"]
        frame, _ = until(ws, "frame", lambda m: not m["running"])
        assert all(np.isfinite(np.asarray(w["W"])).all() for w in frame["weights"])
        send(ws, "settings", settings={"lr": 0.01})
        state, _ = until(ws, "state")
        send(ws, "step")
        until(ws, "step")


def test_csv_upload_model_download_and_load(client, tmp_path):
    with client.websocket_connect("/ws") as ws:
        ws.receive_json()
        bad = base64.b64encode(b"a,b,label\n1,2,x\n3,oops,y\n").decode()
        send(ws, "upload_csv", name="bad.csv", data=bad)
        error, _ = until(ws, "error")
        assert error["message"].startswith("bad.csv") and "line 3" in error["message"]
        rows = "".join(f"{i % 5},{(i * 7) % 11},{'a' if i % 3 else 'b'}\n" for i in range(60))
        good = base64.b64encode(("u,v,kind\n" + rows).encode()).decode()
        send(ws, "upload_csv", name="mine.csv", data=good)
        state, _ = until(ws, "state")
        assert state["data"]["name"] == "mine.csv" and state["data"]["class_names"] == ["a", "b"]
        send(ws, "export_model")
        model, _ = until(ws, "model_file")
        content = base64.b64decode(model["data"])
        path = tmp_path / model["name"]
        path.write_bytes(content)
        net = dp.load(path)
        assert net.sizes == state["network"]["sizes"]
        assert net.metadata["class_names"] == ["a", "b"] and net.metadata["scaler"] is not None
        assert main(["info", str(path)]) == 0
        send(ws, "step")
        until(ws, "step")
        send(ws, "load_model", data=model["data"])
        state, _ = until(ws, "state")
        assert state["frame"]["weights"] == [
            {"W": ly.W.tolist(), "b": ly.b.tolist()} for ly in net.layers
        ]


def test_a_socket_from_another_site_is_refused(client):
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect("/ws", headers={"origin": "http://evil.example"}) as ws,
    ):
        ws.receive_json()


def test_the_playground_command_refuses_a_bad_port_and_data(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["playground", "--port", "99999"])
    assert "expected a port number 0..65535" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n2,\n", encoding="utf-8")
    assert main(["playground", "--no-browser", "--data", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("deltaprop playground: error: ") and str(bad) in err
    assert len(err.strip().splitlines()) == 1


def test_the_command_prints_its_address_serves_and_stops_on_ctrl_c():
    import signal
    import subprocess
    import sys
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "deltaprop", "playground", "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/"), url
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"deltaprop playground" in response.read()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "playground stopped" in err


def test_a_host_beyond_this_machine_gets_a_warning(capsys, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)  # do not actually listen
    assert main(["playground", "--no-browser", "--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "warning: listening on 0.0.0.0" in err and "could not listen" in err


def test_pages_of_a_server_started_with_data_train_on_it():
    from deltaprop.playground.problems import read_csv_upload
    from deltaprop.playground.settings import Settings

    upload = read_csv_upload("given.csv", b"p,q,r,label\n" + b"1,2,3,a\n4,5,6,b\n" * 20)
    with TestClient(create_app(Settings(dataset="csv"), upload)) as client:
        with client.websocket_connect("/ws") as ws:
            state = ws.receive_json()
            assert state["data"]["name"] == "given.csv" and state["network"]["sizes"][0] == 3
            send(ws, "reset")
            state, _ = until(ws, "state")
            assert state["data"]["name"] == "given.csv"
