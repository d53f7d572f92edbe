"""Telegram Updates exactly as Telegram publishes them, with their source.

Source: “Testing your bot with updates”, Marvin's Marvellous Guide to All Things Webhook,
https://core.telegram.org/bots/webhooks#testing-your-bot-with-updates (the “Message with
text” example; note that it has no chat `type`).
"""

MESSAGE_WITH_TEXT = """{
"update_id":10000,
"message":{
  "date":1441645532,
  "chat":{
     "last_name":"Test Lastname",
     "id":1111111,
     "first_name":"Test",
     "username":"Test"
  },
  "message_id":1365,
  "from":{
     "last_name":"Test Lastname",
     "id":1111111,
     "first_name":"Test",
     "username":"Test"
  },
  "text":"/start"
}
}"""
