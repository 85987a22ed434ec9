# fa2 sim --sweep seqlen --plot doc/figures/hbm-vs-seqlen.svg; to render it again, run gnuplot hbm-vs-seqlen.gp in this file's directory
set terminal svg size 960,520 dynamic font 'Helvetica,12' background 'white'
set output 'hbm-vs-seqlen.svg'
set logscale xy
set grid
set key top left
set format y '%.0e'
set title "HBM bytes vs sequence length (fwd), batch 1, 16 heads, d = 64, H100-SXM5-80GB\nsolid: global (requested), dashed: DRAM (after L2)"
set xlabel 'sequence length'
set ylabel 'bytes'
set logscale x 2
plot 'hbm-vs-seqlen.dat' index 0 using 1:2 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'standard', \
     'hbm-vs-seqlen.dat' index 0 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#d62728' notitle, \
     'hbm-vs-seqlen.dat' index 1 using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'FlashAttention', \
     'hbm-vs-seqlen.dat' index 1 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#1f77b4' notitle, \
     'hbm-vs-seqlen.dat' index 2 using 1:2 with linespoints lw 2 pt 7 lc rgb '#2ca02c' title 'FlashAttention-2', \
     'hbm-vs-seqlen.dat' index 2 using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '#2ca02c' notitle
