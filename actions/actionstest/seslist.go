package actionstest

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// listLocked serves one page of ListSuppressedDestinations; s.mu is held.
func (s *SES) listLocked(call *Call) sesReply {
	size := 100
	if call.PageSize != "" {
		n, err := strconv.Atoi(call.PageSize)
		if err != nil || n < 1 || n > 1000 {
			return sesError(http.StatusBadRequest, "BadRequestException", "PageSize must be between 1 and 1000.")
		}
		size = n
	}
	var start, end time.Time
	for _, d := range []struct {
		raw string
		t   *time.Time
	}{{call.StartDate, &start}, {call.EndDate, &end}} {
		if d.raw == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, d.raw)
		if err != nil {
			return sesError(http.StatusBadRequest, "SerializationException", "Invalid date %q.", d.raw)
		}
		*d.t = t
	}
	addrs := slices.Sorted(maps.Keys(s.list))
	var page []map[string]any
	next := ""
	for _, a := range addrs {
		e := s.list[a]
		switch {
		case call.NextToken != "" && a <= call.NextToken:
			continue
		case len(call.Reasons) > 0 && !slices.Contains(call.Reasons, e.reason):
			continue
		case !start.IsZero() && e.at.Before(start), !end.IsZero() && e.at.After(end):
			continue
		}
		if len(page) == size {
			next = page[len(page)-1]["EmailAddress"].(string)
			break
		}
		page = append(page, map[string]any{"EmailAddress": a, "Reason": e.reason, "LastUpdateTime": epochSeconds(e.at)})
	}
	body := map[string]any{"SuppressedDestinationSummaries": page}
	if page == nil {
		body["SuppressedDestinationSummaries"] = []any{}
	}
	if next != "" {
		body["NextToken"] = next
	}
	return sesReply{status: http.StatusOK, body: body}
}
