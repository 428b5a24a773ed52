package test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestDeploy_NginxSite checks deploy/nginx/wxauth.conf with `nginx -t`
// inside a wrapper configuration, with a throwaway certificate in place of
// the site's and every path under a temporary directory. It is skipped
// when nginx is not installed (CI installs Debian's).
func TestDeploy_NginxSite(t *testing.T) {
	t.Parallel()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx is not installed")
		}
		nginx = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	site, err := os.ReadFile("../deploy/nginx/wxauth.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"location = /wx", "location = /login", "location /oauth/", "location = /logout", "location = /userinfo", "location /session/",
		"location = /me", "location /.well-known/", "auth_request /_wxauth_verify", "proxy_pass http://wxauth/verify", "ssl_certificate"} {
		if !strings.Contains(string(site), want) {
			t.Errorf("site lacks %q", want)
		}
	}
	writeTestCert(t, dir)
	conf := strings.NewReplacer(
		"/etc/nginx/tls/auth.example.com/", dir+"/",
		"/var/log/nginx/", dir+"/",
		"/var/www/wxauth", dir,
	).Replace(string(site))
	if err := os.WriteFile(filepath.Join(dir, "wxauth.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	wrapper := `pid ` + dir + `/nginx.pid;
error_log ` + dir + `/error.log;
events {}
http {
    client_body_temp_path ` + dir + `/body;
    proxy_temp_path ` + dir + `/proxy;
    fastcgi_temp_path ` + dir + `/fastcgi;
    uwsgi_temp_path ` + dir + `/uwsgi;
    scgi_temp_path ` + dir + `/scgi;
    access_log off;
    include ` + dir + `/wxauth.conf;
}
`
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(wrapper), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "test is successful") {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

// writeTestCert writes a self-signed fullchain.pem and privkey.pem for
// auth.example.com into dir.
func writeTestCert(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "auth.example.com"}, DNSNames: []string{"auth.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "fullchain.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "privkey.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600)
}

// TestDeploy_Files checks the other deployment files for what operators
// rely on: the Kubernetes objects parse and probe /healthz and /readyz with
// secrets from a Secret, the systemd unit is hardened, and the Dockerfile
// builds a static binary on distroless.
func TestDeploy_Files(t *testing.T) {
	t.Parallel()
	kinds := map[string]bool{}
	var deployment map[string]any
	for _, name := range []string{"deployment.yaml", "service.yaml", "secret.example.yaml"} {
		b, err := os.ReadFile(filepath.Join("../deploy/k8s", name))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			kind, _ := doc["kind"].(string)
			kinds[kind] = true
			if kind == "Deployment" {
				deployment = doc
			}
		}
	}
	for _, k := range []string{"Deployment", "Service", "Secret", "ConfigMap"} {
		if !kinds[k] {
			t.Errorf("deploy/k8s has no %s", k)
		}
	}
	var c struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Name          string
						EnvFrom       []map[string]map[string]string `yaml:"envFrom"`
						LivenessProbe struct {
							HTTPGet struct{ Path string } `yaml:"httpGet"`
						} `yaml:"livenessProbe"`
						ReadinessProbe struct {
							HTTPGet struct{ Path string } `yaml:"httpGet"`
						} `yaml:"readinessProbe"`
					}
				}
			}
		}
	}
	b, _ := yaml.Marshal(deployment)
	if err := yaml.Unmarshal(b, &c); err != nil || len(c.Spec.Template.Spec.Containers) == 0 {
		t.Fatalf("Deployment: %v", err)
	}
	ct := c.Spec.Template.Spec.Containers[0]
	if ct.LivenessProbe.HTTPGet.Path != "/healthz" || ct.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes: liveness %q, readiness %q", ct.LivenessProbe.HTTPGet.Path, ct.ReadinessProbe.HTTPGet.Path)
	}
	secretRef := false
	for _, e := range ct.EnvFrom {
		if e["secretRef"]["name"] == "wxauth" {
			secretRef = true
		}
	}
	if !secretRef {
		t.Error("the container does not take its secrets from the Secret wxauth")
	}

	for file, wants := range map[string][]string{
		"../deploy/systemd/authsvc.service": {"DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=wxauth", "NoNewPrivileges=yes",
			"EnvironmentFile=/etc/wxauth/wxauth.env", "ExecStart=/usr/local/bin/authsvc serve"},
		"../deploy/Dockerfile": {"CGO_ENABLED=0", "FROM gcr.io/distroless/static", "AS build", "./cmd/authsvc"},
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wants {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q", file, w)
			}
		}
	}
}
