package apiclient

import (
	"context"
	"fmt"
	"net/url"
)

// ListPage GETs one page of a cursor-paged list, {"items":[…],
// "next_cursor":"…"}, at path with query, and returns its items and the
// cursor of the next page ("" on the last one).
func ListPage[T any](ctx context.Context, c *Client, path string, query url.Values) ([]T, string, error) {
	var page struct {
		Items      []T    `json:"items"`
		NextCursor string `json:"next_cursor"`
	}
	_, err := c.DoJSON(ctx, Request{Path: path, Query: query}, &page)
	return page.Items, page.NextCursor, err
}

// AllPages follows next_cursor from cursor to the last page, fetching each
// with page; what names the list in an error. A cursor handed back again
// would loop for ever, so it is an error; an empty page ends the list
// whatever its cursor says.
func AllPages[T any](what, cursor string, page func(cursor string) ([]T, string, error)) ([]T, error) {
	var out []T
	seen := map[string]bool{}
	for {
		seen[cursor] = true
		items, next, err := page(cursor)
		if err != nil {
			return out, err
		}
		out = append(out, items...)
		if next == "" || len(items) == 0 {
			return out, nil
		}
		if seen[next] {
			return out, fmt.Errorf("%s: next_cursor %q repeats the cursor of an earlier page", what, next)
		}
		cursor = next
	}
}
