package main

// TestSlackManifest holds slack-app-manifest.yaml to the code: the app it
// creates has every scope the Slack calls of the code need, and no scope
// without a reason.

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"go.yaml.in/yaml/v3"
)

const slackManifestFile = "../../slack-app-manifest.yaml"

// slackScopeReasons are the bot scopes the manifest may ask for, and why.
var slackScopeReasons = map[string]string{
	"chat:write":       "chat.postMessage to a channel destination; chat.update to edit a storm's root message and a pressed button's message",
	"incoming-webhook": "the incoming webhooks of webhook_env destinations",
	"usergroups:read":  "usergroups.users.list, to know the members of allow_groups",
}

// slackAPIScopes maps the Slack Web API methods the code may call to the
// bot scope each needs ("" for none).
var slackAPIScopes = map[string]string{
	"auth.test":             "",
	"chat.postMessage":      "chat:write",
	"chat.postEphemeral":    "chat:write",
	"chat.update":           "chat:write",
	"chat.delete":           "chat:write",
	"usergroups.list":       "usergroups:read",
	"usergroups.users.list": "usergroups:read",
	"users.info":            "users:read",
}

// slackClientMethods maps the methods of slack-go's *slack.Client the code
// may call (without their Context suffix) to the Web API method each
// calls ("" for one that calls none).
var slackClientMethods = map[string]string{
	"AuthTest":            "auth.test",
	"PostMessage":         "chat.postMessage",
	"SendMessage":         "chat.postMessage",
	"PostEphemeral":       "chat.postEphemeral",
	"UpdateMessage":       "chat.update",
	"DeleteMessage":       "chat.delete",
	"GetUserGroups":       "usergroups.list",
	"GetUserGroupMembers": "usergroups.users.list",
	"GetUserInfo":         "users.info",
	"Debug":               "",
	"Debugf":              "",
	"Debugln":             "",
}

// slackWebhookFuncs are slack-go's functions that post to an incoming
// webhook.
var slackWebhookFuncs = []string{"PostWebhook", "PostWebhookContext", "PostWebhookCustomHTTP", "PostWebhookCustomHTTPContext"}

// slackManifest is the part of a Slack app manifest these tests read; the
// manifest may hold no other key.
type slackManifest struct {
	Metadata struct {
		MajorVersion int `yaml:"major_version"`
		MinorVersion int `yaml:"minor_version"`
	} `yaml:"_metadata"`
	DisplayInformation struct {
		Name            string `yaml:"name"`
		Description     string `yaml:"description"`
		BackgroundColor string `yaml:"background_color"`
	} `yaml:"display_information"`
	Features struct {
		BotUser struct {
			DisplayName  string `yaml:"display_name"`
			AlwaysOnline bool   `yaml:"always_online"`
		} `yaml:"bot_user"`
	} `yaml:"features"`
	OAuthConfig struct {
		Scopes struct {
			Bot  []string `yaml:"bot"`
			User []string `yaml:"user"`
		} `yaml:"scopes"`
	} `yaml:"oauth_config"`
	Settings struct {
		Interactivity struct {
			IsEnabled  bool   `yaml:"is_enabled"`
			RequestURL string `yaml:"request_url"`
		} `yaml:"interactivity"`
		OrgDeployEnabled     bool `yaml:"org_deploy_enabled"`
		SocketModeEnabled    bool `yaml:"socket_mode_enabled"`
		TokenRotationEnabled bool `yaml:"token_rotation_enabled"`
	} `yaml:"settings"`
}

// TestSlackManifest checks slack-app-manifest.yaml: it parses with no
// unknown key; its bot scopes hold every scope the code's Slack calls
// need (found in the source), each scope has a reason, and there is no
// user scope; a bot user; interactivity on, with a request URL that ends
// in the path serve answers.
func TestSlackManifest(t *testing.T) {
	src, err := os.ReadFile(slackManifestFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	var m slackManifest
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", slackManifestFile, err)
	}

	if m.Metadata.MajorVersion != 1 || m.DisplayInformation.Name == "" || m.Features.BotUser.DisplayName == "" {
		t.Errorf("%s: _metadata.major_version %d, display_information.name %q, bot_user.display_name %q; want 1 and names",
			slackManifestFile, m.Metadata.MajorVersion, m.DisplayInformation.Name, m.Features.BotUser.DisplayName)
	}
	if m.Settings.SocketModeEnabled || m.Settings.TokenRotationEnabled {
		t.Errorf("%s: socket mode %v, token rotation %v; sesrouter answers over HTTPS with a token that does not expire",
			slackManifestFile, m.Settings.SocketModeEnabled, m.Settings.TokenRotationEnabled)
	}
	if i := m.Settings.Interactivity; !i.IsEnabled || !strings.HasPrefix(i.RequestURL, "https://") || !strings.HasSuffix(i.RequestURL, "/slack/interactions") {
		t.Errorf("%s: interactivity on %v, request_url %q; want on, https://…/slack/interactions", slackManifestFile, i.IsEnabled, i.RequestURL)
	}

	scopes := map[string]bool{}
	for _, s := range m.OAuthConfig.Scopes.Bot {
		if scopes[s] {
			t.Errorf("%s: the bot scope %s is given twice", slackManifestFile, s)
		}
		scopes[s] = true
		if _, ok := slackScopeReasons[s]; !ok {
			t.Errorf("%s: the bot scope %s has no reason in slackScopeReasons: remove it, or say there why sesrouter needs it", slackManifestFile, s)
		}
	}
	if len(m.OAuthConfig.Scopes.User) > 0 {
		t.Errorf("%s: user scopes %q; sesrouter acts as its bot, never as a user", slackManifestFile, m.OAuthConfig.Scopes.User)
	}

	needed := slackScopesNeeded(t, repoRoot)
	for _, s := range []string{"chat:write", "incoming-webhook"} {
		if _, ok := needed[s]; !ok {
			t.Errorf("the scan of the source found no call that needs %s; it misses chat.postMessage or the webhooks (found %v)", s, needed)
		}
	}
	for _, s := range slices.Sorted(maps.Keys(needed)) {
		if !scopes[s] {
			t.Errorf("%s: no bot scope %s, which %s needs", slackManifestFile, s, needed[s])
		}
	}
}

// slackScopesNeeded reads the module's non-test Go files under root and
// returns the Slack bot scopes their calls need, each with one place
// that needs it: calls of slack-go's *slack.Client methods and webhook
// functions in the files that import slack-go, and Web API method names
// in string literals. A *slack.Client method that slackClientMethods does
// not know fails t, so that a new call cannot go without its scope.
func slackScopesNeeded(t *testing.T, root string) map[string]string {
	t.Helper()
	client := map[string]bool{}
	ct := reflect.TypeFor[*slack.Client]()
	for i := range ct.NumMethod() {
		client[ct.Method(i).Name] = true
	}
	for m := range slackClientMethods {
		if !client[m] {
			t.Errorf("slackClientMethods names %s, which is no method of slack-go's *slack.Client", m)
		}
	}
	needed := map[string]string{}
	need := func(scope, where string) {
		if _, ok := needed[scope]; scope != "" && !ok {
			needed[scope] = where
		}
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "dist") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		slackName := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "github.com/slack-go/slack" {
				slackName = "slack"
				if imp.Name != nil {
					slackName = imp.Name.Name
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(n.Value)
				if err != nil {
					return true
				}
				for method, scope := range slackAPIScopes {
					if s == method || strings.HasSuffix(s, "/"+method) {
						need(scope, fset.Position(n.Pos()).String()+": "+strconv.Quote(s))
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || slackName == "" {
					return true
				}
				where := fset.Position(n.Pos()).String()
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == slackName {
					if slices.Contains(slackWebhookFuncs, sel.Sel.Name) {
						need("incoming-webhook", where+": slack."+sel.Sel.Name)
					}
					return true
				}
				if !client[sel.Sel.Name] {
					return true
				}
				api, ok := slackClientMethods[strings.TrimSuffix(sel.Sel.Name, "Context")]
				if !ok {
					t.Errorf("%s: a call of %s, a method of slack-go's *slack.Client: add the Web API method it calls to slackClientMethods, its scope to slackAPIScopes, and the scope to %s", where, sel.Sel.Name, slackManifestFile)
					return true
				}
				need(slackAPIScopes[api], where+": "+sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return needed
}
