from hubtide.cli import main

main()
