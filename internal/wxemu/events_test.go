package wxemu

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// mustMessage decrypts a safe-mode request in a test callback.
func mustMessage(t *testing.T, r *http.Request) *xnode {
	body, _ := io.ReadAll(r.Body)
	root, err := parseXML(body)
	if err != nil {
		t.Errorf("callback body: %v", err)
		return &xnode{}
	}
	enc, _ := root.childText("Encrypt")
	_, msg, err := Decrypt(cbKey, cbAppID, enc)
	if err != nil {
		t.Errorf("decrypt: %v", err)
		return &xnode{}
	}
	m, _ := parseXML(msg)
	return m
}

func TestEmulator_Events(t *testing.T) {
	cb := &testCallback{reply: func(*xnode) string { return "" }}
	_, srv := newSendPair(t, "safe", cb, nil)
	last := func() *xnode {
		got := cb.deliveries()
		if len(got) == 0 {
			t.Fatal("no delivery")
		}
		return got[len(got)-1].message
	}
	field := func(m *xnode, name string) string { s, _ := m.childText(name); return s }
	tok := postJSON(t, srv.URL+"/cgi-bin/stable_token", `{"grant_type":"client_credential","appid":"`+cbAppID+`","secret":"`+testSecret+`"}`)["access_token"].(string)
	follows := func(openid string) float64 {
		return getJSON(t, srv.URL+"/cgi-bin/user/info?access_token="+tok+"&openid="+openid)["subscribe"].(float64)
	}

	t.Run("Click", func(t *testing.T) {
		res := postJSON(t, srv.URL+"/emu/menu/click", `{"from":"oWXEMU_alice","key":"V1001"}`)
		m := last()
		if res["valid"] != true || field(m, "MsgType") != "event" || field(m, "Event") != "CLICK" || field(m, "EventKey") != "V1001" || m.child("MsgId") != nil {
			t.Errorf("%v %+v", res, m)
		}
	})
	t.Run("Location", func(t *testing.T) {
		res := postJSON(t, srv.URL+"/emu/location", `{"from":"oWXEMU_alice","latitude":23.137466,"longitude":113.352425,"precision":119.385040}`)
		m := last()
		if field(m, "Event") != "LOCATION" || field(m, "Latitude") != "23.137466" || field(m, "Precision") != "119.385040" ||
			!strings.Contains(res["sent"].(string), "<Longitude>113.352425</Longitude>") {
			t.Errorf("%v", res["sent"])
		}
	})
	t.Run("SubscribeUnsubscribe", func(t *testing.T) {
		postJSON(t, srv.URL+"/emu/subscribe", `{"from":"oWXEMU_bob"}`)
		if m := last(); field(m, "Event") != "subscribe" || field(m, "EventKey") != "" || follows("oWXEMU_bob") != 1 {
			t.Errorf("subscribe: %+v", m)
		}
		postJSON(t, srv.URL+"/emu/unsubscribe", `{"from":"oWXEMU_bob"}`)
		if m := last(); field(m, "Event") != "unsubscribe" || follows("oWXEMU_bob") != 0 {
			t.Errorf("unsubscribe: %+v", m)
		}
		postJSON(t, srv.URL+"/emu/subscribe", `{"from":"oWXEMU_bob","scene":"promo"}`)
		if m := last(); field(m, "EventKey") != "qrscene_promo" {
			t.Errorf("subscribe with scene: %+v", m)
		}
		postJSON(t, srv.URL+"/emu/follow", `{"openid":"oWXEMU_bob","follows":false}`)
		if follows("oWXEMU_bob") != 0 {
			t.Error("follow:false did not unfollow")
		}
	})
	t.Run("Scan", func(t *testing.T) {
		qr := createQR(t, srv, tok, `{"expire_seconds":300,"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":"login42"}}}`)
		ticket := qr["ticket"].(string)
		body := `{"openid":"oWXEMU_bob","ticket":"` + ticket + `"}`
		res := postJSON(t, srv.URL+"/emu/scan", body)
		m := last()
		if res["valid"] != true || field(m, "Event") != "subscribe" || field(m, "EventKey") != "qrscene_login42" || field(m, "Ticket") != ticket {
			t.Errorf("first scan: %v %+v", res, m)
		}
		info := getJSON(t, srv.URL+"/cgi-bin/user/info?access_token="+tok+"&openid=oWXEMU_bob")
		if info["subscribe"] != 1.0 || info["qr_scene_str"] != "login42" || info["subscribe_scene"] != "ADD_SCENE_QR_CODE" {
			t.Errorf("user/info after scan: %v", info)
		}
		postJSON(t, srv.URL+"/emu/scan", body)
		if m := last(); field(m, "Event") != "SCAN" || field(m, "EventKey") != "login42" || field(m, "Ticket") != ticket {
			t.Errorf("second scan: %+v", m)
		}
		if r := postJSON(t, srv.URL+"/emu/scan", `{"openid":"oWXEMU_bob","ticket":"nope"}`); r["_status"] != 404.0 {
			t.Errorf("unknown ticket: %v", r)
		}
		if r := postJSON(t, srv.URL+"/emu/scan", `{"openid":"oNobody","ticket":"`+ticket+`"}`); r["_status"] != 400.0 {
			t.Errorf("unknown user: %v", r)
		}
		num := createQR(t, srv, tok, `{"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":77}}}`)
		postJSON(t, srv.URL+"/emu/scan", `{"openid":"oWXEMU_alice","ticket":"`+num["ticket"].(string)+`"}`)
		if m := last(); field(m, "Event") != "SCAN" || field(m, "EventKey") != "77" {
			t.Errorf("numeric scene: %+v", m)
		}
	})
}
