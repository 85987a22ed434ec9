# fa2 sim --sweep sram --plot doc/figures/hbm-vs-sram.svg; to render it again, run gnuplot hbm-vs-sram.gp in this file's directory
set terminal svg size 960,520 dynamic font 'Helvetica,12' background 'white'
set output 'hbm-vs-sram.svg'
set logscale xy
set grid
set key top left
set format y '%.0e'
set title "HBM (global) bytes vs SRAM size M (fwd), N = 16384, d = 64, fp16"
set xlabel 'SRAM size M (bytes)'
set ylabel 'global bytes'
set key top right
set xrange [13107.2:1.31072e+06]
plot 'hbm-vs-sram.dat' index 0 with linespoints lw 2 pt 7 title 'FlashAttention (Bc = M/4d, Br = min(Bc, d))', \
     'hbm-vs-sram.dat' index 1 with linespoints lw 2 pt 5 title 'FlashAttention-2 (Br = Bc = M/4d)', \
     5.27766e+13 / x with lines dt 2 lc rgb 'black' title '12 N^2 d^2 es^2 / M (slope -1)'
