package apikeyotel_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyotel"
	"github.com/go-apikey/apikey/sqlite"
)

// Trace a Manager: the store below it and verification above it. A real
// program would give an OTLP exporter to the tracer provider; this one
// keeps the spans in memory to print them.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "apikey-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "apikey.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(ctx)

	m, err := apikey.NewManager(apikeyotel.NewStore(db, tp), apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(ctx)
	verifier := apikeyotel.NewVerifier(m, tp) // for apikeyhttp.New

	_, token, err := m.Create(ctx, apikey.CreateParams{Name: "billing backend"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := verifier.Verify(ctx, token); err != nil {
		log.Fatal(err)
	}
	for _, s := range spans.GetSpans() {
		for _, kv := range s.Attributes {
			if kv.Key == apikeyotel.OutcomeKey {
				fmt.Println(s.Name, kv.Value.Emit())
			}
		}
		if s.Name != "apikey.verify" {
			fmt.Println(s.Name)
		}
	}
	// Output:
	// apikey.store.insert
	// apikey.store.lookup
	// apikey.verify valid
}
