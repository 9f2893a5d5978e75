package actionstest

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The Slack fake's two wire protocols: the Web API's chat.postMessage
// (form or JSON parameters) and incoming webhooks.

// isJSONParam reports whether a form parameter holds JSON (Block Kit and
// the like) rather than a plain string.
func isJSONParam(key string) bool {
	switch key {
	case "blocks", "attachments", "metadata":
		return true
	}
	return false
}

// apiParams decodes a Web API request's parameters: the query, plus a form
// or JSON body. Each value is JSON: strings quoted, blocks and the like as
// sent.
func apiParams(r *http.Request, body []byte) (map[string]jsontext.Value, error) {
	params := map[string]jsontext.Value{}
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ctype == "application/json" {
		if err := json.Unmarshal(body, &params); err != nil {
			return nil, err
		}
		for k, v := range params {
			if err := v.Compact(); err != nil {
				return nil, err
			}
			params[k] = v
		}
	}
	values := r.URL.Query()
	if ctype == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		for k, v := range form {
			values[k] = v
		}
	}
	for k, v := range values {
		if len(v) == 0 {
			continue
		}
		if isJSONParam(k) {
			raw := jsontext.Value(v[0])
			if err := raw.Compact(); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			params[k] = raw
			continue
		}
		params[k] = mustJSON(v[0])
	}
	return params, nil
}

// mustJSON encodes v without HTML escaping.
func mustJSON(v any) jsontext.Value {
	b, err := json.Marshal(v, json.Deterministic(true), jsontext.PreserveRawStrings(true))
	if err != nil {
		panic(err) // strings and maps of raw JSON only
	}
	return b
}

// compact is raw without its whitespace, in a copy; raw as it is when it
// is not JSON.
func compact(raw []byte) jsontext.Value {
	v := jsontext.Value(bytes.Clone(raw))
	if v.Compact() != nil {
		return jsontext.Value(raw)
	}
	return v
}

// stringParam is params[key] when it is a JSON string.
func stringParam(params map[string]jsontext.Value, key string) string {
	var s string
	if raw, ok := params[key]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// emptyJSON reports whether raw is absent, null, "" or [].
func emptyJSON(raw jsontext.Value) bool {
	switch string(raw) {
	case "", "null", `""`, "[]":
		return true
	}
	return false
}

// serveAPI serves /api/METHOD.
func (s *Slack) serveAPI(w http.ResponseWriter, r *http.Request, body []byte, f Fault) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	switch method {
	case "chat.postMessage", "chat.update", "auth.test", "usergroups.users.list":
	default:
		s.apiError(w, "unknown_method")
		return
	}
	params, err := apiParams(r, body)
	if err != nil {
		if strings.HasPrefix(err.Error(), "blocks:") {
			s.apiError(w, "invalid_blocks_format")
		} else {
			s.apiError(w, "invalid_form_data")
		}
		return
	}
	token := stringParam(params, "token")
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		token = bearer
	}
	switch {
	case token == "":
		s.apiError(w, "not_authed")
		return
	case token != s.Token() || f.kind == faultAccessDenied:
		s.apiError(w, "invalid_auth")
		return
	}
	switch method {
	case "usergroups.users.list":
		s.mu.Lock()
		members, ok := s.groups[stringParam(params, "usergroup")]
		s.mu.Unlock()
		if !ok {
			s.apiError(w, "no_such_subteam")
			return
		}
		s.apiOK(w, true, map[string]any{"ok": true, "users": append([]string{}, members...)})
		return
	}
	if method == "auth.test" {
		s.apiOK(w, true, map[string]any{
			"ok": true, "url": "https://fake.slack.com/", "team": "Fake",
			"user": "sesrouter", "team_id": "T000", "user_id": "U000", "bot_id": "B000",
		})
		return
	}

	channel := stringParam(params, "channel")
	s.mu.Lock()
	id, known := s.channels[channel]
	s.mu.Unlock()
	if !known || f.kind == faultChannelNotFound {
		s.apiError(w, "channel_not_found")
		return
	}
	text := stringParam(params, "text")
	if text == "" && emptyJSON(params["blocks"]) && emptyJSON(params["attachments"]) {
		s.apiError(w, "no_text")
		return
	}
	var blocks jsontext.Value
	if raw, ok := params["blocks"]; ok && !emptyJSON(raw) {
		blocks = raw
		if problems := CheckBlocks(raw); len(problems) > 0 {
			for i, p := range problems {
				problems[i] = "[ERROR] " + p
			}
			s.apiError(w, "invalid_blocks", problems...)
			return
		}
	}
	delete(params, "token")

	if method == "chat.update" {
		ts := stringParam(params, "ts")
		s.mu.Lock()
		found := false
		for _, p := range s.posts {
			if p.Kind == KindAPI && p.TS == ts && s.channels[p.Channel] == id {
				found = true
			}
		}
		if found {
			s.updates = append(s.updates, Update{Channel: channel, TS: ts, Text: text, Blocks: blocks, Time: time.Now()})
		}
		s.mu.Unlock()
		if !found {
			s.apiError(w, "message_not_found")
			return
		}
		s.apiOK(w, true, map[string]any{"ok": true, "channel": id, "ts": ts, "text": text})
		return
	}

	threadTS := stringParam(params, "thread_ts")
	s.mu.Lock()
	ts := fmt.Sprintf("1700000000.%06d", 100+s.seq)
	s.seq++
	s.posts = append(s.posts, Post{
		Kind:     KindAPI,
		Channel:  channel,
		Text:     text,
		Blocks:   blocks,
		Body:     mustJSON(params),
		Path:     r.URL.Path,
		Time:     time.Now(),
		TS:       ts,
		ThreadTS: threadTS,
	})
	s.mu.Unlock()
	s.apiOK(w, true, map[string]any{
		"ok": true, "channel": id, "ts": ts,
		"message": map[string]any{"type": "message", "user": "U000", "bot_id": "B000", "text": text, "ts": ts},
	})
}

// serveWebhook serves /services/….
func (s *Slack) serveWebhook(w http.ResponseWriter, r *http.Request, body []byte, f Fault) {
	const text = "text/html"
	s.mu.Lock()
	name, known := s.hooks[r.URL.Path]
	s.mu.Unlock()
	switch {
	case !known:
		s.answer(w, http.StatusNotFound, false, text, "no_service")
		return
	case r.Method != http.MethodPost:
		s.answer(w, http.StatusMethodNotAllowed, false, text, "invalid_method")
		return
	case f.kind == faultAccessDenied:
		s.answer(w, http.StatusForbidden, false, text, "invalid_token")
		return
	case f.kind == faultChannelNotFound:
		s.answer(w, http.StatusNotFound, false, text, "channel_not_found")
		return
	}
	var msg map[string]jsontext.Value
	if err := json.Unmarshal(body, &msg); err != nil || msg == nil {
		s.answer(w, http.StatusBadRequest, false, text, "invalid_payload")
		return
	}
	msgText := stringParam(msg, "text")
	if msgText == "" && emptyJSON(msg["blocks"]) && emptyJSON(msg["attachments"]) {
		s.answer(w, http.StatusBadRequest, false, text, "no_text")
		return
	}
	var blocks jsontext.Value
	if raw, ok := msg["blocks"]; ok && !emptyJSON(raw) {
		if problems := CheckBlocks(raw); len(problems) > 0 {
			s.answer(w, http.StatusBadRequest, false, text, "invalid_blocks")
			return
		}
		blocks = compact(raw)
	}
	compactBody := compact(body)

	s.mu.Lock()
	s.posts = append(s.posts, Post{
		Kind:    KindWebhook,
		Channel: name,
		Text:    msgText,
		Blocks:  blocks,
		Body:    compactBody,
		Path:    r.URL.Path,
		Time:    time.Now(),
	})
	s.mu.Unlock()
	s.answer(w, http.StatusOK, true, text, "ok")
}

// serveResponseURL serves a response_url made by [Slack.ResponseURL]: a
// JSON message that replaces the original or is sent as a new one.
func (s *Slack) serveResponseURL(w http.ResponseWriter, r *http.Request, body []byte) {
	s.mu.Lock()
	ts, known := s.replies[r.URL.Path]
	s.mu.Unlock()
	if !known || r.Method != http.MethodPost {
		s.answer(w, http.StatusNotFound, false, "text/plain", "no_service")
		return
	}
	var msg map[string]jsontext.Value
	if err := json.Unmarshal(body, &msg); err != nil || msg == nil {
		s.answer(w, http.StatusBadRequest, false, "text/plain", "invalid_payload")
		return
	}
	var blocks jsontext.Value
	if raw, ok := msg["blocks"]; ok && !emptyJSON(raw) {
		if problems := CheckBlocks(raw); len(problems) > 0 {
			s.answer(w, http.StatusBadRequest, false, "text/plain", "invalid_blocks")
			return
		}
		blocks = compact(raw)
	}
	var replace bool
	_ = json.Unmarshal(msg["replace_original"], &replace)
	s.mu.Lock()
	s.updates = append(s.updates, Update{TS: ts, Text: stringParam(msg, "text"), Blocks: blocks, ResponseURL: true,
		ReplaceOriginal: replace, ResponseType: stringParam(msg, "response_type"), Time: time.Now()})
	s.mu.Unlock()
	s.answer(w, http.StatusOK, true, "application/json", `{"ok":true}`)
}
