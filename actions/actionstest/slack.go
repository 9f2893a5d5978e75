package actionstest

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Kinds of [Post].
const (
	// KindAPI is a message posted with the Web API method chat.postMessage.
	KindAPI = "api"
	// KindWebhook is a message posted to an incoming webhook.
	KindWebhook = "webhook"
)

// Post is one message the Slack fake accepted.
type Post struct {
	// Kind is KindAPI or KindWebhook.
	Kind string
	// Channel is the channel as the client named it (an ID such as
	// C0123456789, or a name) for KindAPI, and the name given to
	// [Slack.WebhookURL] for KindWebhook.
	Channel string
	// Text is the message's top-level (fallback) text.
	Text string
	// Blocks is the blocks array exactly as sent (compacted), or nil.
	Blocks jsontext.Value
	// Body is the whole message as JSON: the webhook body as sent
	// (compacted), or the chat.postMessage parameters as one JSON object with
	// keys sorted, blocks, attachments and metadata parsed, and the token
	// left out.
	Body jsontext.Value
	// Path is the request path: "/api/chat.postMessage" or the webhook's
	// path, secret included.
	Path string
	// Time is when the fake received the message.
	Time time.Time
	// TS is the message's timestamp, its id in the channel, for KindAPI.
	TS string
	// ThreadTS is the ts of the root whose thread the message was posted
	// in ("" for a top-level message), for KindAPI.
	ThreadTS string
}

// Update is one chat.update the fake accepted, or one message sent to a
// response_url ([Slack.ResponseURL]).
type Update struct {
	// Channel and TS name the message edited (for a response_url, TS is
	// what the URL was made for).
	Channel, TS string
	Text        string
	Blocks      jsontext.Value
	// ResponseURL is whether it came through a response_url, and
	// ReplaceOriginal and ResponseType what it asked for.
	ResponseURL     bool
	ReplaceOriginal bool
	ResponseType    string
	Time            time.Time
}

// Slack is a loopback fake of Slack's Web API (chat.postMessage with
// thread_ts, chat.update, usergroups.users.list, auth.test), response_urls
// and incoming webhooks, for the real slack-go client. Create it with
// [NewSlack]. The Web API answers HTTP 200 with {"ok":false,"error":…} for
// API errors, as Slack does; webhooks answer plain-text codes ("ok",
// "no_service", "invalid_blocks", …) with an HTTP status.
//
// Every message is checked against Slack's Block Kit limits ([CheckBlocks])
// and rejected with invalid_blocks when it breaks one.
type Slack struct {
	fake
	token    string
	channels map[string]string // ID, name or #name -> ID
	nextID   int
	hooks    map[string]string // webhook path -> name
	posts    []Post
	updates  []Update
	groups   map[string][]string // user group ID -> its members
	replies  map[string]string   // response_url path -> the ts it was made for
	seq      int
	// limit is LimitPerSecond's n (0: no limit); recent is the times of
	// the messages let through in the last second, per channel or
	// webhook.
	limit  int
	recent map[string][]time.Time
}

// NewSlack starts a Slack fake on 127.0.0.1, closed by t.Cleanup, with a
// random bot token ([Slack.Token]) and the given channels ([Slack.AddChannel]).
func NewSlack(t testing.TB, channels ...string) *Slack {
	t.Helper()
	s := newSlack(channels)
	s.start(t, s.serveHTTP)
	return s
}

// NewSlackInMemory is [NewSlack] without a socket: the fake is served on
// in-memory connections (net.Pipe), which only [Slack.HTTPClient] makes, and
// its URLs are on the host slack.invalid, which no other client reaches.
// Made inside a testing/synctest bubble, the fake, its client and every
// connection between them belong to the bubble: a post waiting for an
// answer is durably blocked, so the bubble's fake clock can run while it
// waits, and the fake's rate limit and [Post.Time] are on that clock.
// It is closed by t.Cleanup, which a bubble runs inside itself.
func NewSlackInMemory(t testing.TB, channels ...string) *Slack {
	t.Helper()
	s := newSlack(channels)
	s.startInMemory(t, s.serveHTTP, "slack.invalid")
	return s
}

// newSlack is a Slack fake with channels, not yet served.
func newSlack(channels []string) *Slack {
	s := &Slack{
		token:    "xoxb-000-000-" + rand.Text(),
		channels: map[string]string{},
		hooks:    map[string]string{},
	}
	for _, c := range channels {
		s.AddChannel(c)
	}
	return s
}

// URL is the fake's base URL, as "http://127.0.0.1:PORT" (no slash), or
// "http://slack.invalid" for [NewSlackInMemory].
func (s *Slack) URL() string { return s.url }

// HTTPClient returns an HTTP client that reaches the fake: for
// [NewSlackInMemory], the only one, whose every connection is an
// in-memory pipe to the fake, whatever host it is asked for; for
// [NewSlack], one without proxies. It is shared, and its idle
// connections are closed with the fake.
func (s *Slack) HTTPClient() *http.Client { return s.client }

// APIURL is the Web API base URL to give slack.OptionAPIURL (or
// SLACK_API_URL): [Slack.URL] and "/api/". It ends with a slash because
// slack-go appends the method name to it directly.
func (s *Slack) APIURL() string { return s.url + "/api/" }

// Token is the only bot token the Web API accepts. It is random per fake,
// so a test can search output for it to prove it never leaks.
func (s *Slack) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// Setenv sets SLACK_BOT_TOKEN and SLACK_API_URL for the rest of the test,
// as sesrouter reads them.
func (s *Slack) Setenv(t testing.TB) {
	t.Helper()
	t.Setenv("SLACK_BOT_TOKEN", s.Token())
	t.Setenv("SLACK_API_URL", s.APIURL())
}

// AddChannel makes channel exist and returns its ID. A channel ID
// (C0123456789) is used as is; a name ("alerts" or "#alerts") gets a new ID,
// and chat.postMessage then accepts the ID, the name and #name.
func (s *Slack) AddChannel(channel string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.channels[channel]; ok {
		return id
	}
	if isChannelID(channel) {
		s.channels[channel] = channel
		return channel
	}
	name := strings.TrimPrefix(channel, "#")
	s.nextID++
	id := fmt.Sprintf("C%010d", s.nextID)
	s.channels[id] = id
	s.channels[name] = id
	s.channels["#"+name] = id
	return id
}

// isChannelID reports whether c looks like a Slack conversation ID.
func isChannelID(c string) bool {
	if len(c) < 9 || !strings.ContainsRune("CGD", rune(c[0])) {
		return false
	}
	for _, r := range c[1:] {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// WebhookURL returns a new, valid incoming-webhook URL,
// [Slack.URL] and "/services/T000/B000/SECRET", with a random secret.
// Messages posted to it are recorded with Channel set to name.
func (s *Slack) WebhookURL(name string) string {
	path := "/services/T000/B000/" + rand.Text()
	s.mu.Lock()
	s.hooks[path] = name
	s.mu.Unlock()
	return s.url + path
}

// RemoveWebhook removes the incoming webhook at url, as a workspace admin
// would: a later post to it is answered 404 no_service, as Slack does.
func (s *Slack) RemoveWebhook(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.hooks, strings.TrimPrefix(url, s.url))
}

// RotateToken replaces the bot token with a new random one, which it
// returns: the old one is answered invalid_auth from now on, as Slack
// does after a reinstall.
func (s *Slack) RotateToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = "xoxb-000-000-" + rand.Text()
	return s.token
}

// Script queues faults for the next requests, Web API and webhook alike, in
// order, before any random fault. FaultSlow delays the answer; every other
// fault replaces it.
func (s *Slack) Script(faults ...Fault) { s.faults.script(faults) }

// FailRandomly fails each later request, once Script's queue is empty, with
// probability p, choosing uniformly among kinds (by default Fault429,
// Fault500 and Fault503). The choices are a deterministic function of seed
// and the order requests arrive in. p <= 0 turns random failures off.
func (s *Slack) FailRandomly(p float64, seed int64, kinds ...Fault) {
	if len(kinds) == 0 {
		kinds = []Fault{Fault429(), Fault500(), Fault503()}
	}
	s.faults.failRandomly(p, seed, kinds)
}

// LimitPerSecond makes the fake behave as Slack does in a storm: a
// message to a channel or webhook that has already let n messages
// through in the last second is answered 429 with Retry-After: 1 (counted
// in Counts.Throttled and Counts.RateLimited). n <= 0 turns the limit off.
// The second is on the clock of the fake's goroutines: a testing/synctest
// bubble's fake clock for [NewSlackInMemory] made inside one.
func (s *Slack) LimitPerSecond(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = max(n, 0)
	s.recent = map[string][]time.Time{}
}

// overLimit reports whether the message r posts goes past
// LimitPerSecond's limit for its channel or webhook; when it does not, it
// counts the message.
func (s *Slack) overLimit(r *http.Request, body []byte, isAPI bool) bool {
	s.mu.Lock()
	limited := s.limit > 0
	s.mu.Unlock()
	if !limited {
		return false
	}
	key := r.URL.Path
	if isAPI {
		if r.URL.Path != "/api/chat.postMessage" {
			return false
		}
		params, err := apiParams(r, body)
		if err != nil {
			return false
		}
		key = stringParam(params, "channel")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.channels[key]; ok {
		key = id
	}
	now := time.Now()
	recent := s.recent[key]
	for len(recent) > 0 && now.Sub(recent[0]) >= time.Second {
		recent = recent[1:]
	}
	if len(recent) >= s.limit {
		s.recent[key] = recent
		s.counts.RateLimited++
		return true
	}
	s.recent[key] = append(recent, now)
	return false
}

// Updates returns a copy of the edits accepted so far (chat.update and
// response_url), in arrival order.
func (s *Slack) Updates() []Update {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.updates)
}

// AddUserGroup makes the user group id exist with the members given, for
// usergroups.users.list.
func (s *Slack) AddUserGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups == nil {
		s.groups = map[string][]string{}
	}
	s.groups[id] = slices.Clone(members)
}

// ResponseURL returns a new response_url for the message ts, as Slack
// puts in an interaction payload: what is posted to it is recorded in
// [Slack.Updates].
func (s *Slack) ResponseURL(ts string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.replies == nil {
		s.replies = map[string]string{}
	}
	path := fmt.Sprintf("/actions/T000/%d/%s", len(s.replies)+1, rand.Text())
	s.replies[path] = ts
	return s.url + path
}

// Posts returns a copy of the messages accepted so far, in arrival order.
func (s *Slack) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.posts)
}

// serveHTTP applies the next fault, then routes the request.
func (s *Slack) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	s.mu.Lock()
	s.counts.Requests++
	s.mu.Unlock()
	if err != nil {
		s.answer(w, http.StatusBadRequest, false, "text/plain", "invalid_payload")
		return
	}
	isAPI := strings.HasPrefix(r.URL.Path, "/api/")

	f := s.faults.next()
	if f.kind != faultNone {
		s.mu.Lock()
		s.counts.Faults++
		s.mu.Unlock()
	}
	if connectionFault(f, w, r, &s.mu, &s.counts, s.done) {
		return
	}
	switch f.kind {
	case fault429:
		w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
		if isAPI {
			s.answer(w, http.StatusTooManyRequests, false, "application/json; charset=utf-8", `{"ok":false,"error":"ratelimited"}`)
		} else {
			s.answer(w, http.StatusTooManyRequests, false, "text/html", "rate_limited")
		}
		return
	case fault500:
		s.answer(w, http.StatusInternalServerError, false, "text/html", "<html><body><h1>500 Internal Server Error</h1></body></html>")
		return
	case fault503:
		s.answer(w, http.StatusServiceUnavailable, false, "text/html", "<html><body><h1>503 Service Unavailable</h1></body></html>")
		return
	}

	if s.overLimit(r, body, isAPI) {
		w.Header().Set("Retry-After", "1")
		if isAPI {
			s.answer(w, http.StatusTooManyRequests, false, "application/json; charset=utf-8", `{"ok":false,"error":"ratelimited"}`)
		} else {
			s.answer(w, http.StatusTooManyRequests, false, "text/html", "rate_limited")
		}
		return
	}

	switch {
	case isAPI:
		s.serveAPI(w, r, body, f)
	case strings.HasPrefix(r.URL.Path, "/services/"):
		s.serveWebhook(w, r, body, f)
	case strings.HasPrefix(r.URL.Path, "/actions/"):
		s.serveResponseURL(w, r, body)
	default:
		s.answer(w, http.StatusNotFound, false, "text/plain", "not_found")
	}
}

// answer writes one response and counts it.
func (s *Slack) answer(w http.ResponseWriter, code int, ok bool, contentType, body string) {
	s.mu.Lock()
	s.counts.countStatus(code, ok)
	s.mu.Unlock()
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// apiError answers a Web API error the way Slack does: HTTP 200, ok:false.
func (s *Slack) apiError(w http.ResponseWriter, code string, messages ...string) {
	resp := map[string]any{"ok": false, "error": code}
	if len(messages) > 0 {
		resp["response_metadata"] = map[string]any{"messages": messages}
	}
	s.apiOK(w, false, resp)
}

// apiOK answers a Web API call with HTTP 200 and resp as JSON.
func (s *Slack) apiOK(w http.ResponseWriter, ok bool, resp any) {
	b, err := json.Marshal(resp)
	if err != nil {
		panic(err) // only maps of strings and bools
	}
	s.answer(w, http.StatusOK, ok, "application/json; charset=utf-8", string(b))
}
