package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/memstore"
)

// Check a key against its rate limits and spend its credits. The "requests"
// limit applies to every request; "search" only where the route asks for
// it, here with a cost of 5.
func ExampleManager_Check() {
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	m, err := apikey.NewManager(memstore.New(), apikey.Config{Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	_, token, err := m.Create(ctx, apikey.CreateParams{
		Name: "search client",
		RateLimits: []apikey.RateLimit{
			{Name: "requests", Limit: 100, Period: time.Minute, Burst: 20},
			{Name: "search", Limit: 10, Period: time.Second},
		},
		Credits: &apikey.Credits{Remaining: 1000, Refill: &apikey.Refill{Interval: apikey.RefillMonthly, Amount: 1000, Day: 1}},
	})
	if err != nil {
		panic(err)
	}

	res, err := m.Check(ctx, token, apikey.CheckOptions{RateLimit: "search", Cost: 5, Credits: 3, IdempotencyKey: "order-42"})
	if err != nil {
		panic(err)
	}
	for _, r := range res.RateLimits {
		fmt.Printf("%s: %d of %d left\n", r.Name, r.Remaining, r.Limit)
	}
	fmt.Println("credits left:", res.Credits.Remaining)

	// The next search of cost 10 would exceed the 5 left of "search".
	_, err = m.Check(ctx, token, apikey.CheckOptions{RateLimit: "search", Cost: 10})
	var le *apikey.LimitError
	if errors.As(err, &le) && errors.Is(err, apikey.ErrRateLimited) {
		fmt.Println("rate limited, retry after", le.RetryAfter)
	}
	// Output:
	// requests: 19 of 100 left
	// search: 5 of 10 left
	// credits left: 997
	// rate limited, retry after 500ms
}
