"""The Python peers of dtc's peer suite, driven the way their documentation shows, against the
simulator: DingTalk's official SDK (alibabacloud-dingtalk, token fetched once and reused), the
DingtalkChatbot webhook library (its 20-a-minute pause bypassed for the throughput case) and
Apprise's DingTalk notifier (`dingtalk://secret@token/`, its 5.5 s pause bypassed). Prints one JSON line: sent, errors, throttled, seconds, CPU seconds
and peak RSS of this process.

    python peers.py alibabacloud ENDPOINT APP_KEY APP_SECRET GROUP SECONDS THREADS
    python peers.py chatbot ENDPOINT TOKEN SECRET SECONDS THREADS bypass|keep
    python peers.py apprise ENDPOINT TOKEN SECRET SECONDS THREADS
"""

import json
import resource
import sys
import threading
import time


def peak_rss_mb():
    # ru_maxrss would include the parent's memory at fork time (Linux carries the high-water
    # mark across exec); this process's own peak is VmHWM.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def report(sent, errors, throttled, seconds):
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "sent": sent,
                "errors": errors,
                "throttled": throttled,
                "seconds": seconds,
                "cpu_s": ru.ru_utime + ru.ru_stime,
                "max_rss_mb": peak_rss_mb(),
            }
        )
    )


def run_threads(threads, seconds, make_sender):
    counts = {"sent": 0, "errors": 0, "throttled": 0}
    lock = threading.Lock()
    # Each thread's sender is made and used once before the clock starts: imports, plugin
    # loading and first connections are not what is measured.
    senders = [make_sender() for _ in range(threads)]
    for send in senders:
        send()
    deadline = time.monotonic() + seconds

    def work(send):
        sent = errors = throttled = 0
        while time.monotonic() < deadline:
            outcome = send()
            if outcome == "ok":
                sent += 1
            elif outcome == "throttled":
                throttled += 1
            else:
                errors += 1
        with lock:
            counts["sent"] += sent
            counts["errors"] += errors
            counts["throttled"] += throttled

    start = time.monotonic()
    ts = [threading.Thread(target=work, args=(send,)) for send in senders]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    report(counts["sent"], counts["errors"], counts["throttled"], time.monotonic() - start)


def alibabacloud(endpoint, app_key, app_secret, group, seconds, threads):
    from alibabacloud_dingtalk.oauth2_1_0 import models as oauth_models
    from alibabacloud_dingtalk.oauth2_1_0.client import Client as OAuthClient
    from alibabacloud_dingtalk.robot_1_0 import models as robot_models
    from alibabacloud_dingtalk.robot_1_0.client import Client as RobotClient
    from alibabacloud_tea_openapi import models as open_api_models
    from alibabacloud_tea_util import models as util_models
    from Tea.exceptions import TeaException

    def config():
        c = open_api_models.Config()
        c.protocol = "http"
        c.region_id = "central"
        c.endpoint = endpoint
        return c

    token = (
        OAuthClient(config())
        .get_access_token(oauth_models.GetAccessTokenRequest(app_key=app_key, app_secret=app_secret))
        .body.access_token
    )

    def make_sender():
        robot = RobotClient(config())
        headers = robot_models.OrgGroupSendHeaders()
        headers.x_acs_dingtalk_access_token = token
        req = robot_models.OrgGroupSendRequest(
            msg_key="sampleText",
            msg_param=json.dumps({"content": "peer benchmark"}),
            open_conversation_id=group,
            robot_code=app_key,
        )
        runtime = util_models.RuntimeOptions()

        def send():
            try:
                robot.org_group_send_with_options(req, headers, runtime)
                return "ok"
            except TeaException as e:
                return "throttled" if "QpsLimit" in str(e.code) else "error"
            except Exception:
                return "error"

        return send

    run_threads(threads, seconds, make_sender)


def chatbot(endpoint, token, secret, seconds, threads, limiter):
    from dingtalkchatbot.chatbot import DingtalkChatbot

    def make_sender():
        bot = DingtalkChatbot(
            webhook=f"http://{endpoint}/robot/send?access_token={token}", secret=secret
        )

        def send():
            if limiter == "bypass":
                # The library keeps the last 20 send times and sleeps out the minute when they
                # fall within one: forget them.
                while not bot.queue.empty():
                    bot.queue.get_nowait()
            try:
                result = bot.send_text(msg="peer benchmark")
            except Exception:
                return "error"
            code = result.get("errcode") if isinstance(result, dict) else None
            if code == 0:
                return "ok"
            return "throttled" if code == 410100 else "error"

        return send

    run_threads(threads, seconds, make_sender)


def apprise_peer(endpoint, token, secret, seconds, threads):
    import apprise
    from apprise.plugins.dingtalk import NotifyDingTalk

    # Apprise posts to DingTalk's own address, a class attribute of its plugin: point it at the
    # simulator (the only change; the URL, signing and payload are Apprise's).
    NotifyDingTalk.notify_url = f"http://{endpoint}/robot/send?access_token={{token}}"
    # Apprise waits 5.5 s between two notifications of one service (its base class's
    # request_rate_per_sec): bypassed for the throughput case, as DingtalkChatbot's pause is.
    NotifyDingTalk.request_rate_per_sec = 0

    def make_sender():
        notifier = apprise.Apprise()
        assert notifier.add(f"dingtalk://{secret}@{token}/"), "apprise took the URL"

        def send():
            # Apprise answers only whether it sent.
            return "ok" if notifier.notify(body="peer benchmark") else "error"

        return send

    run_threads(threads, seconds, make_sender)


def main():
    kind = sys.argv[1]
    if kind == "alibabacloud":
        endpoint, app_key, app_secret, group, seconds, threads = sys.argv[2:8]
        alibabacloud(endpoint, app_key, app_secret, group, float(seconds), int(threads))
    elif kind == "chatbot":
        endpoint, token, secret, seconds, threads, limiter = sys.argv[2:8]
        chatbot(endpoint, token, secret, float(seconds), int(threads), limiter)
    elif kind == "apprise":
        endpoint, token, secret, seconds, threads = sys.argv[2:7]
        apprise_peer(endpoint, token, secret, float(seconds), int(threads))
    else:
        raise SystemExit(f"unknown peer {kind}")


if __name__ == "__main__":
    main()
