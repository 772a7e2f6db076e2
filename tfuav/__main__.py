from tfuav.cli import main

main()
