"""Drive the simulator with DingTalk's official Python SDK (alibabacloud-dingtalk) and the
popular DingtalkChatbot webhook library, unchanged, the way a user would against the real
service. Run by tests/sdk_compat.rs; prints one JSON summary line and exits non-zero on failure.

usage: sdk_compat.py HOST:PORT APP_KEY APP_SECRET GROUP_ID WEBHOOK_TOKEN WEBHOOK_SECRET
"""

import json
import sys

from alibabacloud_dingtalk.oauth2_1_0 import models as oauth_models
from alibabacloud_dingtalk.oauth2_1_0.client import Client as OAuthClient
from alibabacloud_dingtalk.robot_1_0 import models as robot_models
from alibabacloud_dingtalk.robot_1_0.client import Client as RobotClient
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util import models as util_models
from dingtalkchatbot.chatbot import DingtalkChatbot
from Tea.exceptions import TeaException


def config(endpoint):
    c = open_api_models.Config()
    c.protocol = "http"
    c.region_id = "central"
    c.endpoint = endpoint
    return c


def main():
    endpoint, app_key, app_secret, group, wh_token, wh_secret = sys.argv[1:7]
    summary = {}

    oauth = OAuthClient(config(endpoint))
    resp = oauth.get_access_token(
        oauth_models.GetAccessTokenRequest(app_key=app_key, app_secret=app_secret)
    )
    token = resp.body.access_token
    assert len(token) == 32, token
    assert resp.body.expire_in == 7200, resp.body.expire_in
    summary["token"] = "ok"

    try:
        oauth.get_access_token(
            oauth_models.GetAccessTokenRequest(app_key=app_key, app_secret="wrong")
        )
        raise AssertionError("wrong secret was accepted")
    except TeaException as e:
        assert e.code == "invalidClientIdOrSecret", (e.code, e.message)
        assert "request id:" in e.message, e.message
        summary["wrong_secret_code"] = e.code

    robot = RobotClient(config(endpoint))
    headers = robot_models.OrgGroupSendHeaders()
    headers.x_acs_dingtalk_access_token = token
    sends = [
        ("sampleText", {"content": "hello from the official SDK"}),
        ("sampleMarkdown", {"title": "SDK", "text": "## SDK markdown\n- one\n- two"}),
        (
            "sampleActionCard",
            {
                "title": "SDK card",
                "text": "via OrgGroupSend",
                "singleTitle": "Open",
                "singleURL": "https://example.com",
            },
        ),
    ]
    keys = []
    for msg_key, param in sends:
        req = robot_models.OrgGroupSendRequest(
            msg_key=msg_key,
            msg_param=json.dumps(param, ensure_ascii=False),
            open_conversation_id=group,
            robot_code=app_key,
        )
        r = robot.org_group_send_with_options(req, headers, util_models.RuntimeOptions())
        keys.append(r.body.process_query_key)
    summary["group_send_keys"] = keys

    try:
        bad = robot_models.OrgGroupSendRequest(
            msg_key="sampleActionCard1",
            msg_param="{}",
            open_conversation_id=group,
            robot_code=app_key,
        )
        robot.org_group_send_with_options(bad, headers, util_models.RuntimeOptions())
        raise AssertionError("unknown msgKey was accepted")
    except TeaException as e:
        assert e.code == "invalidParameter.msgKey.invalid", (e.code, e.message)
        summary["bad_msg_key_code"] = e.code

    qh = robot_models.OrgGroupQueryHeaders()
    qh.x_acs_dingtalk_access_token = token
    q = robot.org_group_query_with_options(
        robot_models.OrgGroupQueryRequest(
            process_query_key=keys[0],
            open_conversation_id=group,
            robot_code=app_key,
            max_results=1,
        ),
        qh,
        util_models.RuntimeOptions(),
    )
    assert q.body.send_status == "SUCCESS", q.body
    summary["query_has_more"] = q.body.has_more

    bot = DingtalkChatbot(
        webhook=f"http://{endpoint}/robot/send?access_token={wh_token}", secret=wh_secret
    )
    result = bot.send_text(msg="signed hello from DingtalkChatbot")
    assert result.get("errcode") == 0, result
    summary["chatbot"] = result

    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
