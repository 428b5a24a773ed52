// Command peer is the benchmark's peer: silenceper/wechat's Official Account
// message callback server, the most used Go WeChat SDK, answering every text
// message with a text reply, as wxauth's keyword rule does in the same
// benchmark. It lives in a module of its own so that wxauth's go.mod does not
// carry the SDK.
//
// Its logger (logrus, set to Debug and stdout by the SDK's init) is put at
// Warn, the level a production service runs at. It prints
// "listening on http://ADDR" once it accepts connections, and answers
// GET /metrics with the one line the benchmark reads from every process,
// go_memstats_mallocs_total.
//
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_standard_messages.html
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/silenceper/wechat/v2"
	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/officialaccount/config"
	"github.com/silenceper/wechat/v2/officialaccount/message"
	"github.com/sirupsen/logrus"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	appID := fs.String("appid", "", "the Official Account's appid")
	token := fs.String("token", "", "the Token of 服务器配置")
	aesKey := fs.String("aes-key", "", "the EncodingAESKey (43 characters); safe mode is chosen per request by encrypt_type=aes")
	reply := fs.String("reply", "Hello from the benchmark", "the text of every reply")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	logrus.SetLevel(logrus.WarnLevel)
	logrus.SetOutput(stderr)

	oa := wechat.NewWechat().GetOfficialAccount(&config.Config{
		AppID: *appID, Token: *token, EncodingAESKey: *aesKey, Cache: cache.NewMemory(),
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/wx", func(w http.ResponseWriter, r *http.Request) {
		srv := oa.GetServer(r, w)
		srv.SetMessageHandler(func(m *message.MixMessage) *message.Reply {
			if m.MsgType == message.MsgTypeText {
				return &message.Reply{MsgType: message.MsgTypeText, MsgData: message.NewText(*reply)}
			}
			return nil
		})
		if err := srv.Serve(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := srv.Send(); err != nil {
			logrus.Warnf("send: %v", err)
		}
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	// The benchmark reads the allocations per message from here, as it
	// reads go_memstats_mallocs_total from wxauth's /metrics.
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(w, "go_memstats_mallocs_total %d\n", ms.Mallocs)
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; hs.Close() }()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
