"""Sharing a chart in Slack through the real slack_sdk `files_upload_v2` (get an upload URL, send the bytes,
complete the upload) against the fake Slack, and the fake's own checks of that flow."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from matplotlib import image
from slack_sdk.errors import SlackRequestError

from bot.charts import CalibrationBin, calibration_png
from bot.slack_client import Poster

from .servers.slack import DESK_CHANNEL, FakeSlack
from .test_fake_slack import refused, slack  # noqa: F401 - the fake Slack fixture and its refusal helper
from .test_fake_slack import web as client

PNG = b"\x89PNG\r\n\x1a\n"


def poster(slack: FakeSlack) -> Poster:
    return Poster(client(slack), per_second=50)


def chart() -> bytes:
    return calibration_png([CalibrationBin(0.2, 0.3, 7, 0.25, 0.27, 0.3), CalibrationBin(0.6, 0.7, 4, 0.66, 0.64, 0.5)],
                           title="Analyst calibration")


async def ticket(slack: FakeSlack, data: bytes, name: str = "chart.png") -> tuple[str, str]:
    """(file id, upload URL) from files.getUploadURLExternal, as the first step of files_upload_v2 asks."""
    answer = await client(slack).files_getUploadURLExternal(filename=name, length=len(data))
    return answer["file_id"], answer["upload_url"]


async def send(url: str, data: bytes) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(url, content=data)


# --- through the Poster ------------------------------------------------------------------------------------------


async def test_a_chart_lands_in_the_channel_as_a_message_carrying_the_file(slack):
    post = poster(slack)
    await post.post("#trading-desk", {"text": "Track record"})  # tells the Poster the channel's id
    png = chart()
    file_id = await post.upload_png("#trading-desk", "calibration.png", png, title="Calibration",
                                    alt_text="Forecast probability against observed frequency", comment="Last 90 days")
    last = slack.messages("trading-desk")[-1]
    assert last["text"] == "Last 90 days" and last["upload"] is True
    assert [{k: f[k] for k in ("id", "name", "title", "mimetype")} for f in last["files"]] == [
        {"id": file_id, "name": "calibration.png", "title": "Calibration", "mimetype": "image/png"}]
    stored = slack.files[file_id]
    assert stored["content"] == png and stored["channel"] == DESK_CHANNEL and stored["thread_ts"] is None
    assert stored["alt_txt"] == "Forecast probability against observed frequency"
    assert image.imread(io.BytesIO(stored["content"]), format="png").shape[:2] == (600, 900)


async def test_a_channel_id_needs_no_earlier_post(slack):
    file_id = await poster(slack).upload_png(DESK_CHANNEL, "pnl.png", chart(), title="P&L", alt_text="P&L")
    assert slack.messages(DESK_CHANNEL)[-1]["files"][0]["id"] == file_id


async def test_a_channel_name_never_posted_to_is_refused_by_slack(slack):
    answer = await refused(poster(slack).upload_png("#trading-desk", "c.png", chart(), title="c", alt_text="c"))
    assert answer["error"] == "channel_not_found"
    assert slack.messages(DESK_CHANNEL) == []


async def test_an_upload_into_a_thread_lands_in_the_thread(slack):
    post = poster(slack)
    channel, parent = await post.post("#trading-desk", {"text": "Track record"})
    file_id = await post.upload_png("#trading-desk", "c.png", chart(), title="c", alt_text="c", thread_ts=parent)
    replies = slack.thread(channel, parent)
    assert [r["files"][0]["id"] for r in replies] == [file_id]
    assert slack.message(channel, parent)["reply_count"] == 1
    assert slack.files[file_id]["thread_ts"] == parent


async def test_without_files_write_the_upload_is_refused_before_any_bytes_move():
    scopes = ["chat:write", "commands", "usergroups:read"]  # an app installed before the scope was added
    async with FakeSlack(scopes=scopes) as slack:
        answer = await refused(poster(slack).upload_png(DESK_CHANNEL, "c.png", chart(), title="c", alt_text="c"))
        assert answer["error"] == "missing_scope" and answer["needed"] == "files:write"
        assert slack.files == {} and slack.server.count("POST", "/upload/") == 0


# --- what slack_sdk sends (the wire the fake is built on) -------------------------------------------------------


async def test_files_upload_v2_sends_what_the_fake_expects(slack):
    png = chart()
    await client(slack).files_upload_v2(channel=DESK_CHANNEL, filename="c.png", content=png, title="Calib",
                                        alt_txt="alt", initial_comment="hi", thread_ts="1732550000.000100")
    get_url, upload, complete = [r for r in slack.requests if r.path.startswith(("/api/files.", "/upload/"))]
    assert (get_url.method, get_url.path, get_url.body) == ("POST", "/api/files.getUploadURLExternal", b"")
    assert get_url.query == {"filename": "c.png", "length": str(len(png)), "alt_txt": "alt"}
    assert get_url.headers["Authorization"] == f"Bearer {slack.bot_token}"
    assert upload.method == "POST" and upload.body == png  # raw bytes, not a form
    assert upload.headers["Content-Type"] == "application/octet-stream" and "Authorization" not in upload.headers
    assert (complete.method, complete.path, complete.body) == ("POST", "/api/files.completeUploadExternal", b"")
    assert json.loads(complete.query.pop("files")) == [{"id": next(iter(slack.files)), "title": "Calib"}]
    assert complete.query == {"channel_id": DESK_CHANNEL, "initial_comment": "hi", "thread_ts": "1732550000.000100"}


# --- the fake refuses what Slack refuses ----------------------------------------------------------------------


async def test_bytes_of_another_length_than_declared_are_refused(slack):
    file_id, url = await ticket(slack, b"x" * 10)
    answer = await send(url, b"x" * 9)
    assert (answer.status_code, answer.text) == (400, "length_mismatch")
    assert slack.files[file_id]["content"] is None
    assert (await send(url, b"x" * 10)).status_code == 200  # the URL still takes the right bytes


async def test_a_failed_byte_upload_raises_and_shares_nothing(slack):
    slack.faults.add("503", "/upload/")  # files.slack.com answering 503 to the bytes
    with pytest.raises(SlackRequestError, match="Failed to upload a file"):
        await poster(slack).upload_png(DESK_CHANNEL, "c.png", chart(), title="c", alt_text="c")
    assert slack.posted("files.completeUploadExternal") == [] and slack.messages(DESK_CHANNEL) == []


async def test_an_upload_url_is_good_for_one_upload_and_unknown_ones_are_refused(slack):
    _, url = await ticket(slack, b"abc")
    first = await send(url, b"abc")
    assert (first.status_code, first.headers["Content-Type"].split(";")[0], first.text) == (200, "text/plain",
                                                                                           "OK - 3")
    assert (await send(url, b"abc")).status_code == 404
    assert (await send(url.rsplit("/", 1)[0] + "/not-a-ticket", b"abc")).text == "upload_url_not_found"


async def test_a_multipart_upload_is_accepted_too(slack):
    file_id, url = await ticket(slack, b"\x89PNG-ish")
    async with httpx.AsyncClient() as http:
        answer = await http.post(url, files={"filename": ("c.png", b"\x89PNG-ish", "image/png")})
    assert answer.status_code == 200 and slack.files[file_id]["content"] == b"\x89PNG-ish"


async def test_completing_the_same_file_twice_is_refused(slack):
    file_id, url = await ticket(slack, b"abc")
    await send(url, b"abc")
    web = client(slack)
    await web.files_completeUploadExternal(files=[{"id": file_id, "title": "t"}], channel_id=DESK_CHANNEL)
    answer = await refused(web.files_completeUploadExternal(files=[{"id": file_id, "title": "t"}],
                                                            channel_id=DESK_CHANNEL))
    assert answer["error"] == "file_not_found"
    assert len(slack.messages(DESK_CHANNEL)) == 1


async def test_completing_before_the_bytes_arrived_or_an_unknown_file_is_refused(slack):
    file_id, _ = await ticket(slack, b"abc")
    web = client(slack)
    for files in ([{"id": file_id}], [{"id": "F0NOSUCH1"}]):
        assert (await refused(web.files_completeUploadExternal(files=files, channel_id=DESK_CHANNEL)))["error"] == \
            "file_not_found"
    assert slack.messages(DESK_CHANNEL) == [] and slack.files[file_id]["completed"] is False


async def test_completing_into_a_channel_name_or_an_unknown_channel_is_refused(slack):
    file_id, url = await ticket(slack, b"abc")
    await send(url, b"abc")
    web = client(slack)
    for channel in ("#trading-desk", "C0NOSUCH1"):
        answer = await refused(web.files_completeUploadExternal(files=[{"id": file_id}], channel_id=channel))
        assert answer["error"] == "channel_not_found"
    assert slack.files[file_id]["completed"] is False  # nothing happened: it can still be completed


async def test_completing_without_a_channel_keeps_the_file_private(slack):
    file_id, url = await ticket(slack, b"abc", name="notes.txt")
    await send(url, b"abc")
    answer = await client(slack).files_completeUploadExternal(files=[{"id": file_id}])
    assert answer["files"] == [{"id": file_id, "title": "notes.txt"}]  # the title defaults to the name
    assert slack.files[file_id]["channel"] is None and slack.messages(DESK_CHANNEL) == []


@pytest.mark.parametrize(("args", "error"), [
    ({"filename": "", "length": 3}, "invalid_arguments"),
    ({"filename": "c.png", "length": "three"}, "invalid_arguments"),
    ({"filename": "c.png", "length": -3}, "invalid_arguments"),
    ({"filename": "c.png", "length": 0}, "missing_argument"),
    ({"filename": "c.png", "length": 3, "alt_txt": "a" * 1001}, "alt_txt_too_large"),
])
async def test_asking_for_an_upload_url_needs_a_filename_and_a_positive_length(slack, args, error):
    answer = await refused(client(slack).files_getUploadURLExternal(**args))
    assert answer["error"] == error
    assert slack.files == {}


async def test_a_missing_argument_is_named_as_slack_names_it(slack):
    answer = await refused(client(slack).api_call("files.getUploadURLExternal", params={"filename": "c.png"}))
    assert answer["response_metadata"]["messages"] == ["[ERROR] missing required field: length"]


@pytest.mark.parametrize("files", ["not json", "[]", '[{"title": "no id"}]', '{"id": "F1"}'])
async def test_completing_needs_a_json_list_of_files_with_ids(slack, files):
    answer = await refused(client(slack).api_call("files.completeUploadExternal",
                                                  params={"files": files, "channel_id": DESK_CHANNEL}))
    assert answer["error"] == "invalid_arguments"


async def test_the_file_methods_need_the_bot_token(slack):
    for web, error in ((client(slack, token=None), "not_authed"), (client(slack, token="xoxb-wrong"), "invalid_auth")):
        assert (await refused(web.files_getUploadURLExternal(filename="c.png", length=3)))["error"] == error
        assert (await refused(web.files_completeUploadExternal(files=[{"id": "F1"}])))["error"] == error
    assert slack.files == {}
