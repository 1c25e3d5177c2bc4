# plot.gp -- bench/out/lb.png from bench_lb.py's lb.dat and switch.dat (bench/run.sh runs it).
#   gnuplot -e "outdir='bench/out'" bench/plot.gp
if (!exists("outdir")) outdir = "bench/out"
lbdat = outdir."/lb.dat"
swdat = outdir."/switch.dat"
have_sw = system("test -s ".swdat." && echo 1 || echo 0") + 0

set terminal pngcairo size 1500,900 font "sans,10"
set output outdir."/lb.png"
set multiplot layout 2,2 title "bluegreen vs nginx include+reload: a switch under wrk -c64 (loopback, 2 blue + 2 green)"

set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set xtics rotate by 25 right noenhanced
set key top left reverse Left
set xlabel "scenario"

set title "Cutover: flip -> only the new colour answers (ms)"
set ylabel "ms"
plot lbdat using 5:xtic(2) title "p50" lc rgb "#4477aa", \
     "" using 6 title "p99" lc rgb "#ee6677", \
     "" using 7 title "max" lc rgb "#bbbbbb"

set title "Failed requests during all flips (wrk non-2xx + socket errors; log scale, +1)"
set ylabel "failed + 1"
set logscale y
set yrange [0.8:*]
plot lbdat using ($3+1):xtic(2) title "wrk failed + 1" lc rgb "#cc3311", \
     "" using ($4+1) title "probe failed + 1" lc rgb "#ee7733"
unset logscale y
set yrange [*:*]

set style data points
set xtics norotate center
set title "Cutover of every flip (ms)"
set xlabel "flip"
set ylabel "ms"
set key outside right
plot for [i=0:*] outdir."/cutover.dat" index i using 1:2 title columnheader(1) pt 7 ps 0.6
set key inside top left

set style data linespoints
set title "Controller switch time vs instances per colour (median, bench_core.py)" noenhanced
set xlabel "instances per colour"
set ylabel "ms"
set logscale x
if (have_sw) {
    plot swdat using 1:2 title "bgctl switch --wait (end to end)" lw 2 pt 7, \
         "" using 1:3 title "controller switch\\_end" lw 2 pt 5
} else {
    set label 1 "no switch.dat: run bench_core.py" at graph 0.3, graph 0.5
    plot 1/0 notitle
}
unset multiplot
