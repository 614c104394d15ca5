package pgtest_test
import ("testing";"github.com/onlinemart/mart/internal/postgres/pgtest")
func TestNew(t *testing.T){ d:=pgtest.New(t,"product"); var n int; if err:=d.DB.NewRaw("select count(*) from products").Scan(t.Context(),&n); err!=nil {t.Fatal(err)} }
