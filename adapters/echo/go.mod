module github.com/go-apikey/apikey/adapters/echo

go 1.26.0

require (
	github.com/go-apikey/apikey v0.0.0
	github.com/labstack/echo/v4 v4.16.0
)

require (
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/go-apikey/apikey/sqlite v0.0.0
	github.com/google/uuid v1.6.0 // indirect
	github.com/labstack/gommon v0.5.0 // indirect
	github.com/mattn/go-colorable v0.1.15 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	github.com/ncruces/go-strftime v1.1.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	github.com/valyala/fasttemplate v1.2.2 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	modernc.org/libc v1.80.1 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
	modernc.org/sqlite v1.62.0 // indirect
)

replace github.com/go-apikey/apikey => ../..

replace github.com/go-apikey/apikey/sqlite => ../../sqlite
