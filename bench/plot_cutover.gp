# plot_cutover.gp -- bench/out/cutover.png from bench_cutover.py --report's cutover.dat:
# flip -> all traffic on the new colour (median ms) against instances per colour, one line per
# (check mode, interval); dashed = before issue 10, solid = after.
#   gnuplot -e "outdir='bench/out'" bench/plot_cutover.gp
if (!exists("outdir")) outdir = "bench/out"
dat = outdir."/cutover.dat"
stats dat using 1 nooutput
nb = STATS_blocks
set terminal pngcairo size 1200,700 font "sans,10"
set output outdir."/cutover.png"
set title "Cutover (flip -> all traffic on the new colour), median of the flips; rNfM = HAProxy rise N fall M; wrk -c64; dashed = before, solid = after"
set xlabel "instances per colour"
set ylabel "ms"
set logscale x 2
set logscale y
set grid
set key outside right top noenhanced
plot for [i=0:nb-1] dat index i using 1:2 with linespoints dt 2 lc (i+1) title columnheader(1)." before", \
     for [i=0:nb-1] dat index i using 1:3 with linespoints dt 1 lw 2 lc (i+1) title columnheader(1)." after"
