"""The official `dingtalk-stream` SDK, unchanged, against the simulator's Stream gateway.

argv: openapi_endpoint app_key app_secret seconds
Connects with a chatbot handler that answers every message through the SDK's own helpers:
`reply_markdown` when the text starts with "md", `reply_text` otherwise. Prints one JSON line
per message handled, then runs until killed (or `seconds` pass).
"""
import json
import os
import sys
import threading
import time

# The SDK reads the endpoint when it is imported.
os.environ["DINGTALK_OPENAPI_ENDPOINT"] = sys.argv[1]
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

import dingtalk_stream  # noqa: E402
from dingtalk_stream import AckMessage  # noqa: E402


class Echo(dingtalk_stream.ChatbotHandler):
    async def process(self, callback):
        message = dingtalk_stream.ChatbotMessage.from_dict(callback.data)
        text = message.text.content.strip()
        if text.startswith("md"):
            answer = self.reply_markdown("Echo", "**" + text + "**", message)
        else:
            answer = self.reply_text("echo: " + text, message)
        print(json.dumps({
            "text": text,
            "conversation_type": message.conversation_type,
            "conversation_id": message.conversation_id,
            "sender_staff_id": message.sender_staff_id,
            "reply_answer": answer,
        }), flush=True)
        return AckMessage.STATUS_OK, "OK"


def main():
    credential = dingtalk_stream.Credential(sys.argv[2], sys.argv[3])
    client = dingtalk_stream.DingTalkStreamClient(credential)
    client.register_callback_handler(dingtalk_stream.ChatbotMessage.TOPIC, Echo())
    threading.Thread(target=client.start_forever, daemon=True).start()
    time.sleep(float(sys.argv[4]))


if __name__ == "__main__":
    main()
