package wxemu

import (
	"log/slog"
	"net"
	"net/http"
)

// The API IP whitelist (40164) and IP risk control (89503, 89501) of
// cgi-bin/token and stable_token.
// https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html

// handleIPWhitelist serves POST /emu/ip-whitelist {"ips":[...],
// "risk_confirm":bool}: with ips, cgi-bin/token and cgi-bin/stable_token
// from any other IP answer 40164; an empty list turns the check off. With
// risk_confirm (IP risk control), an IP outside the list answers 89503 the
// first time and 89501 after, until POST /emu/ip-whitelist/confirm adds it.
// The answer is the settings: {"ips","risk_confirm"}.
func (e *Emulator) handleIPWhitelist(w http.ResponseWriter, r *http.Request) {
	var req struct {
		IPs         []string `json:"ips"`
		RiskConfirm bool     `json:"risk_confirm"`
	}
	if !readControl(w, r, &req) {
		return
	}
	for _, ip := range req.IPs {
		if net.ParseIP(ip) == nil {
			ctlError(w, http.StatusBadRequest, "ips: %q is not an IP address", ip)
			return
		}
	}
	e.mu.Lock()
	e.whitelist = append([]string(nil), req.IPs...)
	e.ipRisk = req.RiskConfirm
	e.ipSeen = map[string]bool{}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"ips": req.IPs, "risk_confirm": req.RiskConfirm})
}

// handleIPConfirm serves POST /emu/ip-whitelist/confirm {"ip"}: the
// administrator confirms the IP; it joins the whitelist.
func (e *Emulator) handleIPConfirm(w http.ResponseWriter, r *http.Request) {
	var req struct {
		IP string `json:"ip"`
	}
	if err := decodeJSON(r, &req); err != nil || net.ParseIP(req.IP) == nil {
		ctlError(w, http.StatusBadRequest, "want {\"ip\": address}")
		return
	}
	e.mu.Lock()
	e.whitelist = append(e.whitelist, req.IP)
	delete(e.ipSeen, req.IP)
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"ip": req.IP})
}

// checkIP applies the IP whitelist and risk control to a credential call
// from r; it returns WeChat's errcode and errmsg, or 0.
func (e *Emulator) checkIP(r *http.Request) (int, string) {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.whitelist) == 0 && !e.ipRisk {
		return 0, ""
	}
	for _, w := range e.whitelist {
		if w == ip {
			return 0, ""
		}
	}
	ctx := r.Context()
	if e.ipRisk {
		if e.ipSeen[ip] {
			e.behaviour(ctx, "ip_pending", "IP risk control: the IP still awaits the administrator, 89501", slog.String("ip", ip))
			return 89501, errMsgs[89501]
		}
		e.ipSeen[ip] = true
		e.behaviour(ctx, "ip_confirm", "IP risk control: a new IP needs the administrator's confirmation, 89503", slog.String("ip", ip))
		return 89503, errMsgs[89503]
	}
	v6 := ip
	if p := net.ParseIP(ip); p != nil && p.To4() != nil {
		v6 = "::ffff:" + ip
	}
	e.behaviour(ctx, "ip_whitelist", "the caller's IP is not in the API IP whitelist, 40164", slog.String("ip", ip))
	return 40164, "invalid ip " + ip + " ipv6 " + v6 + ", not in whitelist"
}
