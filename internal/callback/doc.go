// Package callback serves an Official Account's message callback (服务器配置
// URL, /wx). It checks signature and msg_signature, decrypts safe-mode and
// compatible-mode bodies with the current or previous EncodingAESKey, refuses
// replays (timestamp outside MaxSkew), drops redeliveries through
// store.Records, routes each message or event by MsgType/Event to a
// [Handler] ([Mux], [First], YAML [Rules], a [Reloader], a forwarder to the
// owner's own service), and writes the passive reply, encrypted and signed
// when the request was, within WeChat's 5 seconds.
//
// It imports the standard library, gopkg.in/yaml.v3 and internal/store
// (de-duplication records) only: it knows no routes, sessions or outbound
// WeChat API.
//
// Protocol:
//   - https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html
//   - https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
//   - https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html
//   - https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Passive_user_reply_message.html
//   - https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html
package callback
