// Package callback serves an Official Account's message callback (服务器配置
// URL, /wx). It checks signature and msg_signature, decrypts safe-mode and
// compatible-mode bodies with the current or previous EncodingAESKey, refuses
// replays (timestamp outside MaxSkew), drops redeliveries through
// store.Records, routes each message or event by MsgType/Event to a
// [Handler], and writes the passive reply, encrypted and signed when the
// request was, within WeChat's 5 seconds.
//
// The pieces:
//   - [Server] is the http.Handler for GET (URL verification) and POST
//     (messages) on /wx; [NewServer] takes a [Config] and a Handler.
//   - [Handler], [HandlerFunc], [First] and [Mux] route messages like
//     net/http routes requests; a handler returns a typed [Reply]
//     ([TextReply], [NewsReply], ...) or nil for "success", and
//     [ErrNotHandled] to pass the message on.
//   - [Rules] are automatic replies read from YAML ([ParseRules],
//     [LoadRules], [SampleRules]); a [Reloader] swaps them on SIGHUP or when
//     the file changes.
//   - [NewForwarder] posts messages as JSON to the owner's own service and
//     relays its reply.
//   - [Message] carries the header decoded once; [Message.Decode] fills the
//     typed views ([Text], [Location], [SubscribeEvent], [ClickEvent], ...).
//   - [Sign] and [Crypter] are WeChat's signature and AES scheme, usable on
//     their own.
//   - An [Observer] set in [Config] is told how each request was answered
//     (verified, answered with an [Outcome], refused with its reason);
//     wxauth's metrics implement it.
//
// A typical wiring (cmd/authsvc):
//
//	rules, err := callback.NewReloader(path, logger)
//	fwd, err := callback.NewForwarder(callback.ForwardConfig{URL: hook, Secret: key, HTTPClient: client})
//	srv, err := callback.NewServer(callback.Config{Token: token, AESKey: aesKey, AppID: appID,
//		OriginalID: ghID, Mode: "safe", MaxSkew: 300 * time.Second, Records: stores.Records,
//		Logger: logger, Observer: met.Callback()}, callback.First(rules, fwd))
//	router.Handle("/wx", limitBody(1<<20)(srv))
//
// It imports the standard library, go.yaml.in/yaml/v3 and internal/store
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
