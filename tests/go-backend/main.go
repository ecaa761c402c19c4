// A JSON-RPC backend that reads requests the way MCP servers written in Go read them: with the
// standard library's encoding/json, into structs, where object keys match case-insensitively
// (with Unicode folding: "ſ" is "s") and the last of equal keys wins. With -nul it also drops NUL
// bytes from keys first, as a JSON library the Go MCP SDK used before v1.4.1 did.
//
// The gateway's tests put it behind a route with a policy: whatever it reads and runs is logged
// (GET /log), so a test sees what a body the gateway let through made it do.
//
//	go-backend -listen 127.0.0.1:PORT [-nul]
//
// POST /mcp answers in JSON, POST /sse on an SSE stream; GET /healthz is its readiness. Every
// other request that reaches it is logged too (GET /requests): its method, path and body length,
// so that a test sees a request smuggled past the gateway, or a body it did not read.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"sync"
)

type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  params          `json:"params"`
}

type params struct {
	Name      string         `json:"name"`
	URI       string         `json:"uri"`
	Arguments map[string]any `json:"arguments"`
	Ref       *struct {
		Type string `json:"type"`
		Name string `json:"name"`
		URI  string `json:"uri"`
	} `json:"ref"`
}

// What the backend read and did, for the test.
type entry struct {
	Method string `json:"method"`
	Name   string `json:"name,omitempty"`
	URI    string `json:"uri,omitempty"`
}

// A request as it arrived.
type arrival struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Body   int    `json:"body"`
}

var (
	mu       sync.Mutex
	seen     []entry
	arrivals []arrival
	dropNul  bool
)

var tools = []map[string]any{
	{"name": "get_weather", "inputSchema": map[string]any{"type": "object"}},
	{"name": "delete_repo", "inputSchema": map[string]any{"type": "object"}},
}
var resources = []map[string]any{
	{"uri": "file:///srv/runbooks/deploy.md", "name": "deploy"},
	{"uri": "file:///etc/shadow", "name": "shadow"},
}
var prompts = []map[string]any{{"name": "summary"}, {"name": "secret_prompt"}}

// answer runs one request, as the server it stands for would, and logs what it ran.
func answer(r request) any {
	e := entry{Method: r.Method}
	var result any = map[string]any{}
	switch r.Method {
	case "initialize":
		result = map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{"tools": map[string]any{}},
			"serverInfo": map[string]any{"name": "go-backend", "version": "1"}}
	case "tools/list":
		result = map[string]any{"tools": tools}
	case "resources/list":
		result = map[string]any{"resources": resources}
	case "prompts/list":
		result = map[string]any{"prompts": prompts}
	case "tools/call":
		e.Name = r.Params.Name
		result = map[string]any{"content": []any{map[string]any{"type": "text", "text": "ran " + r.Params.Name}}}
	case "prompts/get":
		e.Name = r.Params.Name
		result = map[string]any{"messages": []any{}}
	case "resources/read", "resources/subscribe":
		e.URI = r.Params.URI
		result = map[string]any{"contents": []any{map[string]any{"uri": r.Params.URI, "text": "contents of " + r.Params.URI}}}
	case "completion/complete":
		if r.Params.Ref != nil {
			e.Name, e.URI = r.Params.Ref.Name, r.Params.Ref.URI
		}
		result = map[string]any{"completion": map[string]any{"values": []any{}}}
	}
	mu.Lock()
	seen = append(seen, e)
	mu.Unlock()
	if len(r.ID) == 0 {
		return nil
	}
	return map[string]any{"jsonrpc": "2.0", "id": r.ID, "result": result}
}

func serve(w http.ResponseWriter, req *http.Request, sse bool) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if dropNul {
		body = bytes.ReplaceAll(body, []byte(`\u0000`), nil)
	}
	var answers []any
	batch := len(bytes.TrimSpace(body)) > 0 && bytes.TrimSpace(body)[0] == '['
	if batch {
		var requests []request
		if err := json.Unmarshal(body, &requests); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, r := range requests {
			if a := answer(r); a != nil {
				answers = append(answers, a)
			}
		}
	} else {
		var r request
		if err := json.Unmarshal(body, &r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if a := answer(r); a != nil {
			answers = append(answers, a)
		}
	}
	if len(answers) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	var out any = answers[0]
	if batch {
		out = answers
	}
	text, _ := json.Marshal(out)
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: message\ndata: %s\n\n", text)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(text)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9100", "address to listen on")
	flag.BoolVar(&dropNul, "nul", false, "drop NUL bytes from the body's keys before decoding")
	flag.Parse()
	http.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) { serve(w, r, false) })
	http.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) { serve(w, r, true) })
	http.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(append([]entry{}, seen...))
	})
	http.HandleFunc("/requests", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(append([]arrival{}, arrivals...))
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	log.Fatal(http.ListenAndServe(*listen, logged(http.DefaultServeMux)))
}

// logged records each request (but the test's own) before it is served.
func logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/log" && r.URL.Path != "/requests" && r.URL.Path != "/healthz" {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			mu.Lock()
			arrivals = append(arrivals, arrival{Method: r.Method, Path: r.URL.Path, Body: len(body)})
			mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}
