package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sesrouter/sesrouter/rulestore"
)

// LoadFrom reads the rules file name through store (a file, or an S3
// object) and loads it as LoadBytes does; obj is what was read, with the S3
// object's ETag. The read is bounded by rulestore.Timeout.
func LoadFrom(ctx context.Context, store *rulestore.Store, name string) (cfg *Config, obj *rulestore.Object, err error) {
	ctx, cancel := context.WithTimeout(ctx, rulestore.Timeout)
	defer cancel()
	if obj, err = store.Read(ctx, name, ""); err != nil {
		return nil, nil, fmt.Errorf("rules: %w", err)
	}
	if cfg, err = LoadBytes(name, obj.Body); err != nil {
		return nil, nil, err
	}
	return cfg, obj, nil
}

// DefaultRefresh is how long the rules of an S3 object are used before its
// ETag is looked at again, unless said otherwise.
const DefaultRefresh = time.Minute

// Source is where a process that runs on (serve, lambda) reads its rules.
type Source struct {
	// Name is the rules file: a file, or an S3 object s3://BUCKET/KEY.
	Name  string
	Store *rulestore.Store
	// Refresh is how long an S3 object's rules are used before Refresh
	// looks at the object's ETag again; 0 looks at every Refresh. A
	// file is read again only by Reload (SIGHUP).
	Refresh time.Duration
}

// InForce is one set of rules and the Handler that carries them out.
type InForce struct {
	Config  *Config
	Handler *Handler
	// Version is the version loaded: an S3 object's ETag (and version
	// id), "" for a file.
	Version string
}

// Live is the rules in force in a process that runs on, and their
// renewal. A reload builds a new InForce and swaps it in whole: an item
// is handled from start to end with the InForce it took (Current or
// Refresh) as it started, whatever happens to the rules meanwhile, and
// the parts (pacers, storm state, de-duplication) outlive every reload.
// Rules that do not load, or whose actions cannot be built, are refused:
// the rules in force stay, one ERROR line says why, and the RulesRefused
// metric counts it.
type Live struct {
	parts *Parts
	src   Source
	// metrics gets a RulesRefused line for each refusal; nil: none.
	metrics io.Writer

	cur atomic.Pointer[InForce]
	// mu makes one look at a time, and guards what follows.
	mu sync.Mutex
	// etag is the ETag of the S3 object last read, loaded or refused: a
	// refused version is not read, nor refused, again.
	etag string
	// looked is when the rules were last looked at.
	looked time.Time
}

// NewLive returns the rules cfg, read from src as obj (LoadFrom), in
// force, with their Handler built by parts; the error is the Handler's.
// metrics (nil: none) gets the RulesRefused metric of each refusal, as
// an Embedded Metric Format line.
func NewLive(ctx context.Context, parts *Parts, src Source, cfg *Config, obj *rulestore.Object, metrics io.Writer) (*Live, error) {
	h, err := parts.Handler(ctx, cfg)
	if err != nil {
		return nil, err
	}
	l := &Live{parts: parts, src: src, metrics: metrics, etag: obj.ETag, looked: time.Now()}
	l.cur.Store(&InForce{Config: cfg, Handler: h, Version: objectVersion(obj)})
	return l, nil
}

// objectVersion is what the log says of obj's version: "" for a file.
func objectVersion(obj *rulestore.Object) string {
	if obj.ETag == "" {
		return ""
	}
	return obj.Version()
}

// Current returns the rules in force, without looking for new ones.
func (l *Live) Current() *InForce { return l.cur.Load() }

// Refresh returns the rules in force, after looking for new ones when
// the rules are an S3 object whose ETag was last looked at Refresh ago or
// longer. While a look is under way, another caller does not wait: it
// gets the rules in force.
func (l *Live) Refresh(ctx context.Context) *InForce {
	if rulestore.IsS3(l.src.Name) && l.mu.TryLock() {
		if time.Since(l.looked) >= l.src.Refresh {
			l.reload(context.WithoutCancel(ctx), l.etag)
		}
		l.mu.Unlock()
	}
	return l.cur.Load()
}

// Reload reads the rules again now, whole, a file or an S3 object, even
// a version refused before (SIGHUP: a person asks for it, perhaps once
// what the refusal named is fixed), and puts them in force as Refresh
// does.
func (l *Live) Reload(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reload(ctx, "")
}

// reload is the one way new rules come into force: it reads them (an S3
// object only when its ETag is not etag), loads them, builds their
// Handler and swaps it in, or refuses them. l.mu is held.
func (l *Live) reload(ctx context.Context, etag string) {
	l.looked = time.Now()
	log := l.parts.Logger.With(slog.String("rules", l.src.Name))
	ctx, cancel := context.WithTimeout(ctx, rulestore.Timeout)
	defer cancel()
	obj, err := l.src.Store.Read(ctx, l.src.Name, etag)
	if errors.Is(err, rulestore.ErrNotModified) {
		log.Debug("rules unchanged", slog.String("version", l.cur.Load().Version))
		return
	}
	var attrs []slog.Attr
	var cfg *Config
	var h *Handler
	if err == nil {
		l.etag = obj.ETag
		if v := objectVersion(obj); v != "" {
			attrs = append(attrs, slog.String("version", v))
		}
		if cfg, err = LoadBytes(l.src.Name, obj.Body); err == nil {
			h, err = l.parts.Handler(ctx, cfg)
		}
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
		if v := l.cur.Load().Version; v != "" {
			attrs = append(attrs, slog.String("inForce", v))
		}
		log.LogAttrs(ctx, slog.LevelError, "rules not reloaded; the previous rules stay", attrs...)
		if l.metrics != nil {
			if werr := WriteMetrics(l.metrics, time.Now(), NewTally(), RulesRefusedMetric()); werr != nil {
				log.Error("metrics not written", slog.String("error", werr.Error()))
			}
		}
		return
	}
	l.cur.Store(&InForce{Config: cfg, Handler: h, Version: objectVersion(obj)})
	log.LogAttrs(ctx, slog.LevelInfo, "rules reloaded", append(attrs, slog.Int("count", len(cfg.Rules.Rules)))...)
}

// RulesRefusedMetric is the metric of one refusal of new rules: they
// could not be read, did not load, or their actions could not be built.
func RulesRefusedMetric() Metric { return Metric{Name: "RulesRefused", Count: 1} }
