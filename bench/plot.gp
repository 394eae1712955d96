# bench/plot.gp — one clustered bar chart for bench/report.py.
#   gnuplot -e "dat='x.dat'; out='x.png'; ylab='MiB/s'; ttl='...'; n=4;
#               w=1200; logy=0; ref=0" bench/plot.gp
# dat: a header line ("job" then one quoted title per column), then one row
# per job; "-" where a value is missing.  n: the number of columns, job
# included.  logy: log scale.  ref: draw a dashed line at 1.0 (ratios).
set terminal pngcairo size w,520 noenhanced font ",9"
set output out
set title ttl
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set datafile missing "-"
set xtics rotate by 30 right scale 0 nomirror
set key outside top center horizontal
set ylabel ylab
set grid ytics
set bmargin 10
set lmargin 20
if (logy) { set logscale y } else { set yrange [0:*] }
if (ref) {
	plot for [i=2:n] dat using i:xtic(1) title columnheader(i), \
	     1 with lines dashtype 2 linecolor rgb "black" title "1.0"
} else {
	plot for [i=2:n] dat using i:xtic(1) title columnheader(i)
}
